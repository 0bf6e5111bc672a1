"""``pig-lightning serve``: the argument parsing and the server start."""

from __future__ import annotations

import argparse


def prepare(retriever) -> None:
    """Keep a float32 copy of an fp16 gallery: without it every query converts the whole gallery
    (the Retriever converts block by block, which saves memory, not time)."""
    import torch

    if retriever.embeddings.dtype in (torch.float16, torch.bfloat16):
        retriever.embeddings = retriever.embeddings.float()
        retriever.gallery.embeddings = retriever.embeddings  # one copy in memory, not the fp16 one beside it


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
