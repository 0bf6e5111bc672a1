"""``pig-lightning import-weights``: the command line of :mod:`pig_lightning.weights.importer`."""

from __future__ import annotations

import argparse

from pig_lightning.weights.release import RELEASES
from pig_lightning.weights.importer import DEFAULT_TOKENIZER, import_weights, summary

DESCRIPTION = """\
Import a checkpoint of the CLIP-ViP release (--source clipvip: microsoft/XPretrain's post-pretrained
pretrain_clipvip_base_32.pt / _base_16.pt, or a CLIP-ViP fine-tuned with either code) or of the PIG
release (--source pig) into a model folder: config.json (tower and data settings), model.safetensors,
the tokenizer, and import_report.json (every key of the file: mapped, derived or dropped, and why).
"""

EPILOG = """\
Use the folder as model.init_checkpoint (e.g. conf/msrvtt_from_clipvip.yaml), or directly with
index/search --ckpt_path DIR and Retriever(index, DIR). The file is read with
torch.load(weights_only=True) or as safetensors; nothing in it can run.
"""


def main(argv: list[str] | None = None) -> None:
    """``pig-lightning import-weights``; see :data:`DESCRIPTION`."""
    parser = argparse.ArgumentParser(prog="pig-lightning import-weights", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, choices=sorted(RELEASES), help="which release wrote the file")
    parser.add_argument("--input", required=True, metavar="FILE", help="the release's checkpoint (.pt / .safetensors)")
    parser.add_argument("--output", required=True, metavar="DIR", help="model folder to write (must not exist or be empty)")
    parser.add_argument("--config", default=None,
                        help="the CLIP config: a CLIPConfig JSON file, or a folder / hub id holding one (default: "
                             "inferred from the shapes with OpenAI CLIP's conventions, e.g. "
                             "openai/clip-vit-base-patch32 for B/32)")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER,
                        help=f"tokenizer hub id or folder the checkpoint was trained with (default {DEFAULT_TOKENIZER})")
    parser.add_argument("--num_frames", type=int, default=None,
                        help="frames per video of the folder's data settings (default: the temporal embedding's length)")
    parser.add_argument("--max_text_length", type=int, default=50, help="caption tokens (default 50, the MSR-VTT recipes')")
    parser.add_argument("--trust_checkpoint", action="store_true",
                        help="unpickle a file that holds more than tensors: only for a file whose source you trust")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")
    parser.add_argument("--checksums", action="store_true", help="also write SHA256SUMS, checked when the folder is loaded")
    parser.add_argument("--without_frame_cls", action="store_true",
                        help="CLIP-ViP trained with XPretrain's code (no frame CLS tokens): build the backbone without "
                             "them, so the model computes what CLIP-ViP's own model does (default: a frame CLS copied "
                             "from class_embedding, the PIG code's layout, which PIG starts from)")
    parser.add_argument("--special_tokens_from", default=None, metavar="CLIP",
                        help="PIG: the CLIP (hub id or folder, e.g. openai/clip-vit-base-patch32) the release run "
                             "started from; its token table gives the generator's BOS/EOS exactly as the release "
                             "computes them (default: the file's generator token table, shrunk by weight decay)")
    args = parser.parse_args(argv)
    output, report = import_weights(args.source, args.input, args.output, args.config, args.tokenizer,
                                    args.num_frames, args.max_text_length, args.trust_checkpoint,
                                    args.overwrite, args.checksums, args.special_tokens_from,
                                    args.without_frame_cls)
    print(summary(output, report))
