"""``pig-lightning make-synthetic``: the command line of :mod:`pig_lightning.data.worlds.synthetic`."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from pig_lightning.data.worlds.synthetic import SyntheticConfig, make_synthetic


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning make-synthetic``: write (or verify and reuse) a synthetic set."""
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(prog="pig-lightning make-synthetic", description=main.__doc__)
    parser.add_argument("root", help="output folder (reused when it already holds the same set)")
    for field in dataclasses.fields(SyntheticConfig):
        parser.add_argument(f"--{field.name}", type=int, default=getattr(defaults, field.name))
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: min(4, cores))")
    args = parser.parse_args(argv)
    cfg = SyntheticConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)})
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    root = make_synthetic(args.root, cfg, num_workers=args.workers)
    print(f"synthetic set ready in {root}: {cfg.num_train} train / {cfg.num_val} val / {cfg.num_test} test videos")
