"""``pig-lightning search``: the command line of :mod:`pig_lightning.retrieval.search`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import torch
from pathlib import Path

from pig_lightning.retrieval.search import Retriever, shorten


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning search``: rank the videos of a gallery for text queries (online)."""
    parser = argparse.ArgumentParser(prog="pig-lightning search", description=main.__doc__)
    parser.add_argument("--index", required=True, help="gallery file written by `pig-lightning index`")
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint the gallery was built with")
    parser.add_argument("--query", action="append", default=[], help="a text query (repeatable)")
    parser.add_argument("--queries_file", default=None, help="a file with one query per line")
    parser.add_argument("--top_k", "--top-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", choices=["exact", "faiss"], default="exact",
                        help="exact matrix-product top-k (default) or a FAISS index (extra dependency)")
    parser.add_argument("--faiss_factory", default="Flat", help="FAISS index-factory string, e.g. Flat, HNSW32")
    parser.add_argument("--html", default=None, help="also write the results as a self-contained HTML page")
    parser.add_argument("--annotations", default=None,
                        help="with --html: mark the true video of queries that are captions of this annotation file")
    parser.add_argument("--thumbnails", default=None,
                        help="with --html: thumbnails file (default: <index>.thumbs.json when it exists)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    queries = list(args.query)
    if args.queries_file:
        path = Path(args.queries_file)
        if not path.is_file():
            parser.error(f"queries file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            parser.error(f"queries file {path} is not UTF-8 text")
        queries += [line.rstrip("\n") for line in text.splitlines() if line.strip()]
    if not queries:
        parser.error("give at least one --query or a --queries_file")
    if args.html is None and (args.annotations or args.thumbnails):
        parser.error("--annotations and --thumbnails go with --html")
    if args.html is not None:
        from pig_lightning.atomic import check_output_file

        try:
            check_output_file(args.html, "--html")
        except ValueError as exc:
            parser.error(str(exc))
        from pig_lightning.retrieval.thumbnails import load_thumbnails, thumbnails_path

        thumbs_file = args.thumbnails or (thumbnails_path(args.index) if thumbnails_path(args.index).is_file() else None)
        thumbnails = load_thumbnails(thumbs_file) if thumbs_file else None
        truth = None
        if args.annotations:
            from pig_lightning.data.sources.formats import read_annotations

            if not Path(args.annotations).is_file():
                raise FileNotFoundError(f"--annotations not found: {args.annotations}")
            truth = {}
            for record in read_annotations(args.annotations):
                for caption in record.captions:
                    truth.setdefault(caption, set()).add(record.video_id)
    try:
        retriever = Retriever(args.index, args.ckpt_path, device=args.device, backend=args.backend,
                              faiss_factory=args.faiss_factory)
        results = retriever.search(queries, args.top_k)
    except (ValueError, OSError, ImportError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for query, hits in zip(queries, results):
        if args.json:
            print(json.dumps({"query": query, "results": [{"video_id": v, "score": s} for v, s in hits]}))
        else:
            print(f"query: {shorten(query)}")
            for rank, (video_id, score) in enumerate(hits, start=1):
                print(f"  {rank:3d}. {video_id}  {score:.4f}")
    if args.html is not None:
        from pig_lightning.retrieval.html import write_page

        write_page(args.html, queries, results, thumbnails, truth, title=f"pig-lightning search: {args.index}")
        print(f"wrote {args.html}", file=sys.stderr)
