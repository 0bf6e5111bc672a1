"""The ``pig-lightning`` command: LightningCLI (fit/validate/test/predict) plus data tools.

    pig-lightning fit --config conf/demo.yaml
    pig-lightning test --config conf/demo.yaml --ckpt_path runs/demo/version_0/checkpoints/last.ckpt
    pig-lightning make-synthetic data/synthetic
    pig-lightning convert --format msrvtt_csv --input MSRVTT_train.9k.csv --captions_file MSRVTT_data.json --output train9k.jsonl
    pig-lightning preprocess videos/ videos_3fps/ --fps 3 --short_side 224
    pig-lightning data-check --annotations train9k.jsonl --video_root videos_3fps/
    pig-lightning index --ckpt_path last.ckpt --videos data/synthetic/test.jsonl --output gallery.safetensors
    pig-lightning search --index gallery.safetensors --ckpt_path last.ckpt --query "a red circle moves left"
    pig-lightning serve --index gallery.safetensors --ckpt_path last.ckpt    # http://127.0.0.1:8000/
    pig-lightning export --ckpt_path last.ckpt --output clip-finetuned/
    pig-lightning compare runs/demo_pig/version_0 runs/demo_meanp/version_0

Errors: a bad input (a missing or wrong file, a malformed line, an out-of-range setting) ends with
one line naming the culprit and exit code 2; ``--debug`` anywhere on the command line, or
``PIG_LIGHTNING_DEBUG=1``, shows the traceback instead. ``data-check`` exits 1 when it found
problems, ``preprocess`` when some videos failed; an interrupted command (Ctrl-C) exits 130.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

from pig_lightning.commands import COMMANDS, TRAINING, TRAINING_COMMANDS, overview

DEBUG_FLAG = "--debug"
DEBUG_ENV = "PIG_LIGHTNING_DEBUG"
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def debug_requested(args: list[str]) -> bool:
    return DEBUG_FLAG in args or os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def error_line(exc: BaseException) -> str:
    """The message of ``exc``; its type too when the message alone may not say what went wrong."""
    message = str(exc).strip() or repr(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        message = f"missing key {exc.args[0]!r}"
    if not isinstance(exc, (ValueError, OSError)):
        message = f"{type(exc).__name__}: {message}"
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> None:
    """Run a command with the error policy: one line and exit 2 on a bad input, the traceback only
    with ``--debug`` / ``PIG_LIGHTNING_DEBUG=1``."""
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(raw)
    args = [a for a in raw if a != DEBUG_FLAG]
    command = args[0] if args and not args[0].startswith("-") else ""
    previous = os.environ.get("JSONARGPARSE_DEBUG")
    if debug:
        os.environ["JSONARGPARSE_DEBUG"] = "true"  # jsonargparse: tracebacks of parser errors too
    try:
        _run_with_policy(command, args, debug)
    finally:
        if debug and previous is None:
            os.environ.pop("JSONARGPARSE_DEBUG", None)
        elif debug:
            os.environ["JSONARGPARSE_DEBUG"] = previous


def _run_with_policy(command: str, args: list[str], debug: bool) -> None:
    prog = f"pig-lightning {command}".strip()
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            if command in COMMANDS:
                importlib.import_module(COMMANDS[command][0]).main(args[1:])
            elif command in TRAINING_COMMANDS:
                importlib.import_module(TRAINING).main(args)
            elif not command and (not args or args[0] in ("-h", "--help")):
                print(overview(), file=sys.stdout if args else sys.stderr)
                raise SystemExit(0 if args else EXIT_BAD_INPUT)
            else:  # an unknown command or option: LightningCLI says what it accepts
                importlib.import_module(TRAINING).main(args)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            if debug:
                raise
            print(f"{prog}: interrupted", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - the policy: one line, not a traceback
            if debug:
                raise
            print(f"{prog}: error: {error_line(exc)}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None


if __name__ == "__main__":
    main()
