"""``pig-lightning compare``: the command line of :mod:`pig_lightning.compare`."""

from __future__ import annotations

import argparse
import sys

from pig_lightning import compare as _library
from pig_lightning.compare import CompareError, read_report, run_cost, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pig-lightning compare", description=_library.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+",
                        help="run folders (runs/NAME/version_N, or runs/NAME for its latest) or their test_report.json")
    parser.add_argument("--no_cost", action="store_true", help="metrics only (do not load the checkpoints)")
    args = parser.parse_args(argv)
    rows = []
    try:
        for run in args.runs:
            path, report = read_report(run)
            cost = None if args.no_cost else run_cost(report)
            rows.append((str(path.parent), report, cost))
    except (CompareError, OSError) as exc:
        print(f"pig-lightning compare: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table(rows))
