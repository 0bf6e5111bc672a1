"""Weights in and out: model folders (a whole model as safetensors + config + tokenizer) and the
import of the CLIP-ViP and PIG releases' checkpoints. Nothing here unpickles a file it was given."""

from pig_lightning.weights.folder import (
    ModelFolderError,
    export_model,
    is_model_folder,
    load_model_folder,
    read_weights,
    weights_file,
    write_model_folder,
)

__all__ = ["ModelFolderError", "export_model", "is_model_folder", "load_model_folder", "read_weights",
           "weights_file", "write_model_folder"]
