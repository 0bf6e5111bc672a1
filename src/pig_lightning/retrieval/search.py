"""Online search: text queries against a gallery file (``pig-lightning search`` and :class:`Retriever`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from pig_lightning.weights.hf_folder import load_tokenizer
from pig_lightning.retrieval.gallery import Gallery, describe_mismatch
from pig_lightning.load import load_model
from pig_lightning.retrieval.indexer import model_identity, preprocessing_of

log = logging.getLogger(__name__)


def exact_topk(text_emb: torch.Tensor, gallery: torch.Tensor,
               score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], k: int,
               block_size: int = 262_144) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``(scores, indices)`` of the ``k`` best gallery items per text, best first.

    The gallery is scored in blocks (kept in its storage dtype, e.g. fp16, and converted per
    block), and each block's top-k is merged into the running one: memory stays at one
    ``[texts x block]`` score matrix whatever the gallery size.
    """
    best_scores = torch.full((text_emb.shape[0], 0), float("-inf"), device=text_emb.device)
    best_index = torch.zeros((text_emb.shape[0], 0), dtype=torch.long, device=text_emb.device)
    for start in range(0, gallery.shape[0], block_size):
        block = score(text_emb, gallery[start : start + block_size].float())
        values, index = block.topk(min(k, block.shape[1]), dim=1)
        merged_scores = torch.cat([best_scores, values], dim=1)
        merged_index = torch.cat([best_index, index + start], dim=1)
        keep = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1).indices
        best_scores, best_index = merged_scores.gather(1, keep), merged_index.gather(1, keep)
    return best_scores, best_index


def build_faiss_index(embeddings: torch.Tensor, factory: str = "Flat"):
    """A FAISS inner-product index over ``[N, D]`` vectors (``pip install 'pig-lightning[faiss]'``).

    ``factory`` is a FAISS index-factory string: ``"Flat"`` is exact; approximate ones such as
    ``"HNSW32"`` or ``"IVF4096,PQ64"`` are for collections beyond a few million videos.
    """
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("the FAISS backend needs faiss: pip install 'pig-lightning[faiss]' (or faiss-gpu)") from exc
    vectors = embeddings.contiguous().numpy()
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
    return index


class Retriever:
    """Load a checkpoint and a gallery once; answer ``search(texts, k)`` many times.

    For two-tower and hybrid towers a query costs one text encoding and one matrix product
    with the stored vectors (exact top-k, in blocks of ``block_size`` videos). A
    single-tower gallery stores frame vectors and every (query, video) pair runs the
    tower's cross-attention: much slower, and said so when it is loaded.
    """

    def __init__(self, index: str | Path, ckpt_path: str | Path, device: str = "cpu", block_size: int = 262_144,
                 backend: str = "exact", faiss_factory: str = "Flat"):
        if backend not in ("exact", "faiss"):
            raise ValueError(f"backend must be 'exact' or 'faiss', got {backend!r}")
        self.gallery = Gallery.load(index)
        if not self.gallery.video_ids:
            raise ValueError(f"the gallery {index} holds no videos")
        self.module = load_model(ckpt_path, device)
        # Search decodes no video: the resize filter and mode the gallery was built with are taken
        # as given, every other preprocessing setting must match the checkpoint's.
        expected = preprocessing_of(self.module, self.gallery.preprocessing.get("interpolation", "BICUBIC"),
                                    self.gallery.preprocessing.get("resize", "squash"))
        mismatch = describe_mismatch(self.gallery, model_identity(self.module, ckpt_path), expected)
        if mismatch:
            raise ValueError(f"the gallery {index} was not built by the checkpoint {ckpt_path}: {mismatch}")
        expected_ndim = 3 if self.module.tower.kind == "single-tower" else 2
        if self.gallery.embeddings.ndim != expected_ndim:
            raise ValueError(f"the gallery {index} stores {self.gallery.embeddings.ndim}-d embeddings "
                             f"{tuple(self.gallery.embeddings.shape)}; a {self.module.tower.kind} checkpoint needs "
                             f"{expected_ndim}-d ones")
        backbone = self.module.tower.backbone
        if self.gallery.embeddings.shape[-1] != backbone.embed_dim:
            raise ValueError(f"the gallery {index} holds {self.gallery.embeddings.shape[-1]}-d embeddings, the "
                             f"checkpoint {ckpt_path} makes {backbone.embed_dim}-d ones")
        self.tokenizer = load_tokenizer(backbone.tokenizer_source)
        self.max_text_length = backbone.max_text_length
        self.device = device
        self.block_size = block_size
        self.embeddings = self.gallery.embeddings.to(device)
        if self.module.tower.kind == "single-tower":
            per_pair = "a cross-attention over the video's frame vectors"
            warnings.warn(
                f"{type(self.module.tower).__name__} is a single-tower model: every query runs {per_pair} for each "
                f"of the {len(self.gallery.video_ids)} videos (cost grows with the gallery; no dot-product index "
                "is possible). Scoring falls back to chunked pairwise scoring.",
                stacklevel=2,
            )
        self.faiss_index = None
        if backend == "faiss":
            if self.module.tower.kind == "single-tower":
                raise ValueError("the FAISS backend needs one vector per video; a single-tower gallery cannot use it")
            self.faiss_index = build_faiss_index(self.gallery.embeddings.float(), faiss_factory)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        if not texts:
            raise ValueError("no query given")
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(f"empty query at position(s) {empty}")
        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
        for i, n in enumerate(lengths):
            if n > self.max_text_length:
                log.warning("query %d cut to %d tokens (it has %d; the model was trained with max_text_length %d)",
                            i + 1, self.max_text_length, n, self.max_text_length)
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_text_length,
                                return_tensors="pt").to(self.device)
        return self.module.encode_texts(tokens["input_ids"], tokens["attention_mask"]).float()

    @torch.no_grad()
    def scores(self, text_emb: torch.Tensor) -> torch.Tensor:
        """``[M, N]`` scores against the whole gallery (the same function ``score`` computes)."""
        return torch.cat([self.module.score(text_emb, self.embeddings[s : s + self.block_size].float())
                          for s in range(0, len(self.gallery.video_ids), self.block_size)], dim=1)

    @torch.no_grad()
    def search(self, texts: list[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """The ``k`` best videos for every text, as ``(video_id, score)``, best first."""
        n = len(self.gallery.video_ids)
        if k < 1:
            raise ValueError(f"top-k must be >= 1, got {k}")
        if k > n:
            log.warning("top-k %d is larger than the gallery (%d videos): returning all %d", k, n, n)
            k = n
        text_emb = self.encode(texts)
        if self.faiss_index is not None:
            scores, index = self.faiss_index.search(text_emb.cpu().numpy(), k)
            best_scores, best_index = torch.from_numpy(scores), torch.from_numpy(index)
        else:
            best_scores, best_index = exact_topk(text_emb, self.embeddings, self.module.score, k, self.block_size)
        return [[(self.gallery.video_ids[int(i)], float(s)) for s, i in zip(row_s, row_i)]
                for row_s, row_i in zip(best_scores.cpu(), best_index.cpu())]


def shorten(text: str, limit: int = 200) -> str:
    """``text``, or its start and its length when it is longer than ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


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
            from pig_lightning.data.formats import read_annotations

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
