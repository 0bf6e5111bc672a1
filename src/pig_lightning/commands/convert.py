"""``pig-lightning convert``: the command line of :mod:`pig_lightning.data.convert`."""

from __future__ import annotations

import sys

from pig_lightning.atomic import check_output_file
from pig_lightning.data.annotations import AnnotationError, write_jsonl
from pig_lightning.data.formats import read_annotations
from pig_lightning.data.convert import _parser, missing_videos

MISSING_SHOWN = 5


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning convert``: read one annotation file, write generic JSON lines."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        check_output_file(args.output)
        records = read_annotations(
            args.input, args.format, captions_file=args.captions_file, split=args.split,
            video_pattern=args.video_pattern, use_span=args.use_span,
        )
    except (AnnotationError, FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    output = write_jsonl(records, args.output)
    num_captions = sum(len(r.captions) for r in records)
    print(f"wrote {len(records)} videos, {num_captions} captions to {output}")
    if args.video_root is not None:
        missing = missing_videos(records, args.video_root)
        if missing:
            shown = ", ".join(str(p) for p in missing[:MISSING_SHOWN])
            more = f" (and {len(missing) - MISSING_SHOWN} more)" if len(missing) > MISSING_SHOWN else ""
            print(f"warning: {len(missing)} of {len(records)} videos not found under {args.video_root}: "
                  f"{shown}{more}", file=sys.stderr)


if __name__ == "__main__":
    main()
