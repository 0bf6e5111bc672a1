"""``pig-lightning serve``: the command line of :mod:`pig_lightning.serving`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pig_lightning.serving.memory import prepare

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    import torch

    parser = argparse.ArgumentParser(prog="pig-lightning serve", description=main.__doc__)
    parser.add_argument("--index", required=True, help="gallery file written by `pig-lightning index`")
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint the gallery was built with")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes the "
                             "page and the gallery's videos to the whole network, without authentication)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--video_root", default=None,
                        help="folder of the videos for playback (default: the one recorded in the gallery)")
    parser.add_argument("--thumbnails", default=None,
                        help="thumbnails file (default: <index>.thumbs.json when it exists)")
    parser.add_argument("--max_k", type=int, default=100, help="largest top-k a request may ask for (default 100)")
    parser.add_argument("--max_query_chars", type=int, default=500,
                        help="longest query accepted, in characters (default 500)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads per query (default 1: a query's text encoding is small, and more "
                             "threads wait on each other when the machine is busy; docs/serve.md)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning serve``: a local search page (and JSON API) over a gallery: type a query, see
    the top videos as thumbnail strips, click one to play its clip (needs the `serve` extra:
    pip install 'pig-lightning[serve]')."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_k < 1 or args.max_query_chars < 1:
        parser.error("--max_k and --max_query_chars must be >= 1")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be from 0 to 65535, got {args.port}")
    if args.video_root is not None and not Path(args.video_root).is_dir():
        parser.error(f"--video_root is not a folder: {args.video_root}")
    try:
        import uvicorn

        from pig_lightning.serving.app import create_app
    except ImportError as exc:
        raise ImportError(f"serve needs FastAPI and uvicorn ({exc.name} is missing): "
                          "pip install 'pig-lightning[serve]'") from None
    from pig_lightning.retrieval.search import Retriever
    from pig_lightning.retrieval.thumbnails import load_thumbnails, thumbnails_path

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(args.threads)
    thumbs_file = args.thumbnails or (thumbnails_path(args.index) if thumbnails_path(args.index).is_file() else None)
    thumbnails = load_thumbnails(thumbs_file) if thumbs_file else None
    retriever = Retriever(args.index, args.ckpt_path, device=args.device)
    prepare(retriever)
    app = create_app(retriever, args.video_root, thumbnails, max_k=args.max_k, max_query_chars=args.max_query_chars,
                     allowed_hosts=list(LOOPBACK) if args.host in LOOPBACK else None,
                     title=f"pig-lightning search: {Path(args.index).name}")
    root = args.video_root or retriever.gallery.video_root
    if retriever.gallery.sources is None:
        print("note: this gallery does not record its video files (built by an older `index`): no playback",
              file=sys.stderr)
    elif root is None or not Path(root).is_dir():
        print(f"warning: the video root {root} is not a folder here: no playback (give --video_root)", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {len(retriever.gallery.video_ids):,} videos at http://{shown}:{args.port}/ (Ctrl-C to stop)",
          file=sys.stderr)
    if args.host not in LOOPBACK:
        print(f"warning: --host {args.host} makes the page and the videos reachable from other machines "
              "(no authentication)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
