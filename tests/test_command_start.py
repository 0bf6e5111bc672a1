"""Commands that need no model start without the training stack (issue #22: fast start)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pig_lightning.commands import COMMANDS, TRAINING_COMMANDS

HEAVY = ("torch", "lightning", "transformers", "av")


def imported_heavy(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    return eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_cli_the_annotation_readers_and_the_data_commands_import_no_heavy_library():
    assert imported_heavy("import pig_lightning.cli") == []
    assert imported_heavy("import pig_lightning.data.sources.formats, pig_lightning.data.sources.annotations, "
                          "pig_lightning.data.sources.paths") == []
    assert imported_heavy("import pig_lightning.commands.convert, pig_lightning.commands.data_check") == []
    assert imported_heavy("import pig_lightning.data") == []  # the package face is lazy too
    assert imported_heavy("import pig_lightning.data; pig_lightning.data.VideoTextDataModule") != []  # ... and works


def test_help_lists_every_command_and_needs_no_model(capsys):
    from pig_lightning.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in [*COMMANDS, *TRAINING_COMMANDS])
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2 and "usage: pig-lightning COMMAND" in capsys.readouterr().err
