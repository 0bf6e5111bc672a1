"""The ``pig-lightning`` subcommands: one thin file each (options, calling the library, printing),
registered here. :func:`pig_lightning.cli.main` runs them under the one error policy (one line and
exit code 2 on a bad input; ``--debug`` for the traceback). Library modules hold no ``main()``.

A command's module is imported only when it runs, and imports the heavy stack (torch, Lightning,
transformers, PyAV) only where it needs it, so ``pig-lightning --help``, ``convert`` and
``data-check --help`` start at once.
"""

#: LightningCLI's subcommands (fit, validate, test, predict)
TRAINING = "pig_lightning.commands.train"
TRAINING_COMMANDS = {
    "fit": "train a model (and test the best checkpoint with test_after_fit: true)",
    "validate": "evaluate a checkpoint on the validation split",
    "test": "evaluate a checkpoint on the test split",
    "predict": "embed the videos of the predict split",
}

#: command name -> (its module, with a ``main(argv)``; what it does)
COMMANDS = {
    "make-synthetic": ("pig_lightning.commands.make_synthetic", "write the embedded synthetic video set"),
    "convert": ("pig_lightning.commands.convert", "a benchmark's annotation file -> generic JSON lines"),
    "preprocess": ("pig_lightning.commands.preprocess", "re-encode videos once (frame rate, size) for faster loading"),
    "optimize": ("pig_lightning.commands.optimize", "decode once into a litdata dataset to stream in training"),
    "data-check": ("pig_lightning.commands.data_check", "find the videos and captions that would break or bias a run"),
    "index": ("pig_lightning.commands.index", "embed a video collection once: a gallery file"),
    "search": ("pig_lightning.commands.search", "text queries against a gallery"),
    "serve": ("pig_lightning.commands.serve", "a local search page over a gallery"),
    "explain": ("pig_lightning.commands.explain", "what a model looks at for one video"),
    "export": ("pig_lightning.commands.export", "a checkpoint as a Hugging Face CLIP folder or a model folder"),
    "import-weights": ("pig_lightning.commands.import_weights", "the CLIP-ViP or PIG release's checkpoint as a model folder"),
    "compare": ("pig_lightning.commands.compare", "runs side by side: test metrics and online cost"),
}


def overview() -> str:
    """``pig-lightning --help``: every command in one screen."""
    width = max(map(len, [*COMMANDS, *TRAINING_COMMANDS]))
    lines = ["usage: pig-lightning COMMAND [options]   (pig-lightning COMMAND --help for its options)", "",
             "Text-to-video retrieval (the PIG hybrid tower and its baselines) with PyTorch Lightning.", "",
             "training and evaluation (LightningCLI: --config FILE.yaml, --print_config):"]
    lines += [f"  {name:<{width}}  {what}" for name, what in TRAINING_COMMANDS.items()]
    lines += ["", "data, retrieval and weights:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "Errors end with one line and exit code 2; add --debug (or set PIG_LIGHTNING_DEBUG=1) for the "
              "traceback."]
    return "\n".join(lines)
