"""Retrieval evaluation: the rank-based functional metrics core."""

from pig_lightning.evaluation.metrics import (
    EmbeddingSimilarity,
    MatrixSimilarity,
    retrieval_metrics,
    summarize_ranks,
    text_to_video_ranks,
    video_to_text_ranks,
)

__all__ = [
    "EmbeddingSimilarity",
    "MatrixSimilarity",
    "retrieval_metrics",
    "summarize_ranks",
    "text_to_video_ranks",
    "video_to_text_ranks",
]
