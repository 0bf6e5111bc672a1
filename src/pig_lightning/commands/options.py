"""Command-line options shared by the commands that read an annotation file."""

from __future__ import annotations

from pig_lightning.data.sources.formats import FORMAT_OPTIONS, FORMATS


def add_format_arguments(parser) -> None:
    """``--format`` and the reader options of an argparse command that reads an annotation file."""
    parser.add_argument("--format", default="jsonl", choices=list(FORMATS), metavar="FORMAT",
                        help="annotation format (default: jsonl; see `pig-lightning convert --help`)")
    for option in FORMAT_OPTIONS:
        parser.add_argument(f"--{option}", default=None)


def format_options(args) -> dict[str, str]:
    """The reader options given on the command line (see :func:`add_format_arguments`)."""
    return {k: getattr(args, k) for k in FORMAT_OPTIONS if getattr(args, k)}
