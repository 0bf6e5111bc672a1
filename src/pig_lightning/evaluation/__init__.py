"""Retrieval evaluation: the rank-based functional metrics core."""

from pig_lightning.evaluation.metrics import (
    DSLSimilarity,
    EmbeddingSimilarity,
    MatrixSimilarity,
    retrieval_metrics,
    retrieval_ranks,
    summarize_ranks,
    text_to_video_ranks,
    video_to_text_ranks,
)

__all__ = [
    "DSLSimilarity",
    "EmbeddingSimilarity",
    "MatrixSimilarity",
    "retrieval_metrics",
    "retrieval_ranks",
    "summarize_ranks",
    "text_to_video_ranks",
    "video_to_text_ranks",
]
