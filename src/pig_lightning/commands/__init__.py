"""The ``pig-lightning`` subcommands: one thin file each (options, calling the library, printing),
registered here. :func:`pig_lightning.cli.main` runs them under the one error policy (one line and
exit code 2 on a bad input; ``--debug`` for the traceback). Library modules hold no ``main()``.

A command's module is imported only when it runs, so ``pig-lightning convert`` does not pay for
the imports of ``fit``.
"""

#: LightningCLI's subcommands (fit, validate, test, predict) and a line without a command
TRAINING = "pig_lightning.commands.train"

#: command name -> its module (with a ``main(argv)``)
COMMANDS = {
    "make-synthetic": "pig_lightning.commands.make_synthetic",
    "convert": "pig_lightning.commands.convert",
    "preprocess": "pig_lightning.commands.preprocess",
    "optimize": "pig_lightning.commands.optimize",
    "data-check": "pig_lightning.commands.data_check",
    "index": "pig_lightning.commands.index",
    "search": "pig_lightning.commands.search",
    "serve": "pig_lightning.commands.serve",
    "explain": "pig_lightning.commands.explain",
    "export": "pig_lightning.commands.export",
    "import-weights": "pig_lightning.commands.import_weights",
    "compare": "pig_lightning.commands.compare",
}
