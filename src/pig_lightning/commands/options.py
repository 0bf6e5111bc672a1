"""Command-line options shared by the commands that read an annotation file: ``--format`` and the
reader options, from the one definition (:data:`~pig_lightning.data.sources.formats.FORMAT_OPTIONS`)."""

from __future__ import annotations

from typing import Any

from pig_lightning.data.sources.formats import FORMAT_OPTIONS, FORMATS

FLAGS = ("use_span",)  # reader options that are on or off


def add_format_arguments(parser, default: str = "jsonl") -> None:
    """``--format`` and the reader options of an argparse command that reads an annotation file."""
    parser.add_argument("--format", default=default, choices=list(FORMATS), metavar="FORMAT",
                        help=f"annotation format (default: {default}; see `pig-lightning convert --help`)")
    for option, help in FORMAT_OPTIONS.items():
        if option in FLAGS:
            parser.add_argument(f"--{option}", action="store_true", help=help)
        else:
            parser.add_argument(f"--{option}", default=None, help=help)


def format_options(args) -> dict[str, Any]:
    """The reader options given on the command line (see :func:`add_format_arguments`)."""
    return {k: getattr(args, k) for k in FORMAT_OPTIONS if getattr(args, k)}
