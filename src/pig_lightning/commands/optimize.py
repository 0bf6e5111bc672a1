"""``pig-lightning optimize``: the command line of :mod:`pig_lightning.data.optimized.optimize`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pig_lightning.data.optimized import optimize as _library
from pig_lightning.data.sources.annotations import AnnotationError
from pig_lightning.data.sources.paths import OUTSIDE_ROOT_POLICIES
from pig_lightning.data.video.decoding import VideoDecodeError
from pig_lightning.commands.options import add_format_arguments, format_options
from pig_lightning.data.optimized.optimized_format import OptimizedDatasetError
from pig_lightning.data.video.sampling import FRAME_POSITIONS
from pig_lightning.data.optimized.optimize import optimize_dataset


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning optimize``: decode the videos of an annotation file once, into an optimized streaming dataset."""
    parser = argparse.ArgumentParser(prog="pig-lightning optimize", description=_library.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, help="annotation file of one split")
    parser.add_argument("--video_root", required=True, help="folder the video paths are relative to")
    parser.add_argument("--output", required=True, help="folder of the optimized dataset (resumable)")
    add_format_arguments(parser)
    parser.add_argument("--frames_per_video", type=int, default=32,
                        help="uniform frames stored per video; training samples data.num_frames of them "
                             "(jittered), evaluation uniformly. Equal to num_frames: evaluation reads exactly "
                             "the frames the mp4 path reads")
    parser.add_argument("--image_size", type=int, default=224, help="stored frames are image_size squared")
    parser.add_argument("--resize", default="squash", choices=("squash", "crop"))
    parser.add_argument("--interpolation", default="BICUBIC")
    parser.add_argument("--frame_positions", default="truncate", choices=FRAME_POSITIONS)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--part_size", type=int, default=1000, help="videos per resumable part")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: cores, at most 8)")
    parser.add_argument("--chunk_bytes", default="64MB", help="litdata chunk size")
    parser.add_argument("--seek_threshold", type=float, default=30.0)
    parser.add_argument("--frame_folder_fps", type=float, default=None)
    parser.add_argument("--outside_root", default="warn", choices=OUTSIDE_ROOT_POLICIES)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("litdata").setLevel(logging.WARNING)  # its per-part cache notices
    options = format_options(args)
    try:
        summary = optimize_dataset(
            args.annotations, args.video_root, args.output, format=args.format, format_options=options,
            frames_per_video=args.frames_per_video, image_size=args.image_size, resize=args.resize,
            interpolation=args.interpolation, frame_positions=args.frame_positions, quality=args.quality,
            part_size=args.part_size, num_workers=args.workers, chunk_bytes=args.chunk_bytes,
            seek_threshold=args.seek_threshold, frame_folder_fps=args.frame_folder_fps,
            outside_root=args.outside_root)
    except (AnnotationError, OptimizedDatasetError, VideoDecodeError, OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: summary[k] for k in ("num_videos", "written_now", "bytes", "bytes_per_video",
                                              "frames_per_video", "image_size") if k in summary}))
