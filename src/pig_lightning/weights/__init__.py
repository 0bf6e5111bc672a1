"""Weights in and out, as files: checkpoints (reading, what they carry), Hugging Face folders (CLIP
and tokenizer, checksums), model folders (a whole model as safetensors + config + tokenizer) and the
import of the CLIP-ViP and PIG releases' checkpoints. Nothing here unpickles a file it was given, and
nothing here imports the training module: :func:`pig_lightning.load_model` builds one from these files."""

from pig_lightning.weights.folder import (
    ModelFolderError,
    is_model_folder,
    read_weights,
    weights_file,
    write_model_folder,
)

__all__ = ["ModelFolderError", "is_model_folder", "read_weights", "weights_file", "write_model_folder"]
