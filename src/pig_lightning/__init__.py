"""pig-lightning: text-to-video retrieval with the Hybrid-Tower method (PIG) and its baselines.

The public Python API::

    from pig_lightning import load_model, Retriever, build_index

    model = load_model("runs/msrvtt/version_0/checkpoints/best.ckpt")   # or a model folder
    build_index("best.ckpt", "my_videos/", "gallery.safetensors")        # each video: one vector
    hits = Retriever("gallery.safetensors", "best.ckpt").search(["a man plays guitar"], k=5)

Names are imported on first use (``pig_lightning.<name>``), so that importing the package, or
running a command that needs no model, does not load torch, Lightning and transformers.
"""

from __future__ import annotations

from pig_lightning.lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "RetrievalModule": "pig_lightning.module",
    "load_model": "pig_lightning.load",
    "DataSettings": "pig_lightning.settings",
    "Retriever": "pig_lightning.retrieval.search",
    "Gallery": "pig_lightning.retrieval.gallery",
    "build_index": "pig_lightning.retrieval.indexer",
    "Tower": "pig_lightning.models.towers",
    "PIGTower": "pig_lightning.models.towers",
    "MeanPoolingTower": "pig_lightning.models.towers",
    "SeqTransformerTower": "pig_lightning.models.towers",
    "VideoCLSTower": "pig_lightning.models.towers",
    "XPoolTower": "pig_lightning.models.towers",
    "CLIPBackbone": "pig_lightning.models.backbone",
    "FrameCLIPBackbone": "pig_lightning.models.backbone",
    "VideoProxyBackbone": "pig_lightning.models.proxy_backbone",
    "VideoTextDataModule": "pig_lightning.data.datamodule",
    "AnnotationFiles": "pig_lightning.data.source",
}

__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(globals(), _PUBLIC)
