"""``pig-lightning index``: the command line of :mod:`pig_lightning.retrieval.indexer`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import torch

from pig_lightning.data.sources.paths import OUTSIDE_ROOT_POLICIES
from pig_lightning.commands.options import add_format_arguments, format_options
from pig_lightning.retrieval.gallery import Gallery
from pig_lightning.retrieval.indexer import build_index, list_videos, skipped_path


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning index``: embed a video collection with a trained checkpoint (offline)."""
    parser = argparse.ArgumentParser(prog="pig-lightning index", description=main.__doc__)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `pig-lightning fit`")
    parser.add_argument("--videos", required=True, help="annotation file (see --format) or a folder of videos")
    add_format_arguments(parser)  # of --videos when it is an annotation file
    parser.add_argument("--resize", default=None, choices=["squash", "crop"],
                        help="default: as the model was trained (data.resize, recorded in the checkpoint)")
    parser.add_argument("--outside_root", default="warn", choices=OUTSIDE_ROOT_POLICIES,
                        help="video paths outside the video root: warn (default), refuse or allow")
    parser.add_argument("--output", required=True, help="gallery file to write (.safetensors)")
    parser.add_argument("--video_root", default=None, help="root of the annotation paths (default: its folder)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--shard_size", type=int, default=1024, help="videos per resumable shard")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--thumbnails", type=int, default=0,
                        help="also store N small JPEG frames per video beside the gallery (<output>.thumbs.json) "
                             "for `search --html`; default 0: none")
    parser.add_argument("--thumbnail_size", type=int, default=96, help="thumbnail size in pixels (default 96)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first video that cannot be decoded (default: leave it out of the gallery "
                             "and list it with the reason in <output>.skipped.json)")
    args = parser.parse_args(argv)
    if args.thumbnails < 0 or args.thumbnail_size < 8:
        parser.error("--thumbnails must be >= 0 and --thumbnail_size >= 8")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    done = build_index(args.ckpt_path, args.videos, args.output, args.video_root, args.batch_size,
                       args.shard_size, args.num_workers, args.dtype, args.device, rank=rank, world_size=world,
                       resize=args.resize, format=args.format, format_options=format_options(args),
                       outside_root=args.outside_root, strict=args.strict)
    if done:
        gallery = Gallery.load(done)
        listing = skipped_path(done)
        skipped = len(json.loads(listing.read_text())) if listing.is_file() else 0
        print(f"wrote {done}: {len(gallery.video_ids)} videos, embeddings {tuple(gallery.embeddings.shape)} "
              f"{gallery.embeddings.dtype}" + (f"; {skipped} videos could not be decoded and were skipped, listed in "
                                               f"{listing}" if skipped else ""))
        if args.thumbnails:
            from pig_lightning.retrieval.thumbnails import write_thumbnails

            items = list_videos(args.videos, args.video_root, args.format, format_options(args),
                                args.outside_root)
            indexed = set(gallery.video_ids)
            items = [i for i in items if i.video_id in indexed]  # not the skipped ones
            print(f"wrote {write_thumbnails(items, done, args.thumbnails, args.thumbnail_size)}")
