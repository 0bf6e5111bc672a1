"""Retrieval products: gallery files (offline index) and search (online)."""

from pig_lightning.retrieval.gallery import Gallery
from pig_lightning.retrieval.indexer import build_index, list_videos
from pig_lightning.retrieval.search import Retriever

__all__ = ["Gallery", "Retriever", "build_index", "list_videos"]
