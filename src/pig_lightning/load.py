"""The one way in to a trained model: :func:`load_model`.

``index``, ``search``, ``serve``, ``explain``, ``compare``, ``export`` and
:class:`~pig_lightning.retrieval.Retriever` all load their model here, from either file kind
``pig-lightning`` writes:

* a checkpoint (``.ckpt`` of ``pig-lightning fit``): rebuilt by
  :meth:`RetrievalModule.load_from_checkpoint <pig_lightning.module.RetrievalModule.load_from_checkpoint>`
  from what it carries (CLIP config, tokenizer files, data settings);
* a model folder (``export --format model``, or ``import-weights`` for the CLIP-ViP and PIG
  releases' files): its tower built from ``config.json``, every tensor from ``model.safetensors``.

Either way the module comes back with the data settings it was trained with declared in its
constructor (``trained_settings``) and its tower's recipe in ``hparams.tower``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pig_lightning.module import RetrievalModule
from pig_lightning.weights.folder import (CONFIG_NAME, WEIGHTS_NAME, ModelFolderError, check_fits, is_model_folder,
                                          read_model_folder)

__all__ = ["load_model"]


def load_model(path: str | Path, device: str | torch.device = "cpu", eval: bool = True) -> RetrievalModule:
    """The :class:`~pig_lightning.module.RetrievalModule` of a checkpoint file or a model folder, on
    ``device`` (in eval mode unless ``eval=False``). A file that is neither is named as what it is
    (:class:`~pig_lightning.weights.checkpoint_file.CheckpointError`,
    :class:`~pig_lightning.weights.folder.ModelFolderError`)."""
    if is_model_folder(path):
        module = _load_folder(path).to(device)
    else:
        module = RetrievalModule.load_from_checkpoint(str(path), map_location=device)
    return module.eval() if eval else module


def _load_folder(folder: str | Path) -> RetrievalModule:
    """Every tensor of the module must be in ``model.safetensors``, and nothing else."""
    spec, tower, state = read_model_folder(folder)
    module = RetrievalModule(tower, trained_settings=spec.get("data"))
    module.hparams["tower"] = spec["tower"]  # recorded as a module built from a config records it
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ
        raise ModelFolderError(f"{Path(folder) / WEIGHTS_NAME} does not fit its {CONFIG_NAME}: "
                               f"{' '.join(str(exc).split())[:600]}") from exc
    check_fits(result, folder)
    backbone = getattr(module.tower, "backbone", None)
    if backbone is not None and spec.get("model_source"):
        backbone.model_source = spec["model_source"]
    return module
