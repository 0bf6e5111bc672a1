"""Online search: text queries against a gallery file (``pig-lightning search`` and :class:`Retriever`)."""

from __future__ import annotations

import logging
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
