"""``pig-lightning export``: the command line of :mod:`pig_lightning.export`."""

from __future__ import annotations

import argparse
import sys

from pig_lightning.weights.folder import ModelFolderError
from pig_lightning.weights.hf_folder import ModelSourceError, OutputFolderError
from pig_lightning.export import ExportError, export_checkpoint, export_model

DESCRIPTION = """\
Write the CLIP model inside a checkpoint of `pig-lightning fit`, with the tokenizer it was trained
with, as a plain Hugging Face folder. Only CLIP is exported: a tower's own parts (PIG's generator
and fusion, X-Pool's pooling head, seqTransf's transformer, CLIP-ViP's proxy tokens, frame CLS and
temporal embedding) are not.
"""

USAGE_NOTES = """\
The folder DIR then holds config.json + model.safetensors (the trained CLIP, logit_scale included),
the tokenizer files, and export_info.json (source checkpoint and sha256, tower, epoch/step, and the
parameter-name prefixes that were not exported). Use it with
  transformers.CLIPModel.from_pretrained(DIR), AutoTokenizer.from_pretrained(DIR)
or start a new run from it (set data.tokenizer: DIR and, in the backbone's init_args,
  pretrained: DIR
  logit_scale_init: null     # otherwise logit_scale is reset to ln 100)
With --format model, DIR holds the whole model instead (config.json: tower class path and arguments
and the data settings; model.safetensors: every tensor; the tokenizer); it is read without
unpickling anything, by index/search --ckpt_path DIR, Retriever(index, DIR) and
model.init_checkpoint: DIR.
"""


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning export``; see :data:`DESCRIPTION` and :data:`USAGE_NOTES`."""
    parser = argparse.ArgumentParser(prog="pig-lightning export", description=DESCRIPTION, epilog=USAGE_NOTES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, metavar="CKPT",
                        help="a checkpoint written by `pig-lightning fit`")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder to write; it must not exist or be empty (see --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    parser.add_argument("--checksums", action="store_true",
                        help="also write SHA256SUMS of the model and tokenizer files; loading the folder then checks them")
    parser.add_argument("--format", choices=["clip", "model"], default="clip",
                        help="clip (default): the CLIP backbone as a Hugging Face folder; model: the whole model "
                             "(config.json with the tower and data settings, model.safetensors, the tokenizer), which "
                             "index, search, Retriever and model.init_checkpoint take in place of the checkpoint")
    args = parser.parse_args(argv)
    write = export_model if args.format == "model" else export_checkpoint
    try:
        output = write(args.ckpt_path, args.output, args.overwrite, args.checksums)
    except (ExportError, ModelSourceError, ModelFolderError, OutputFolderError):
        raise  # bad input: one line and exit 2 (pig_lightning.cli)
    except OSError as exc:  # the folder could not be written: exit 1
        print(f"pig-lightning export: error: could not write {args.output}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.format == "model":
        print(f"exported the model of {args.ckpt_path} (every tensor, config.json, tokenizer) to {output}")
        return
    print(f"exported the CLIP model and tokenizer of {args.ckpt_path} to {output}; "
          f"what was not exported is listed in {output / 'export_info.json'}")
