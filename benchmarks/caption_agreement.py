"""How much do a video's captions agree? The statistic PIG's premise rests on, per benchmark setting.

    python benchmarks/caption_agreement.py        # -> docs/caption_agreement.md

Computed from the plans of the quality benchmark's settings (no tower is trained here) and the
shipped pretrained tiny CLIP's text tower (``assets/clip-tiny-scenes``, stage 1):

* **event overlap**: mean Jaccard overlap of the events two captions of one video name;
* **best video-only query**: for every caption, the cosine between it and the mean of its video's
  *other* captions (in the pretrained text space, normalised): the best a query predicted from
  the video alone can do if the video determines its captions' common content. PIG's pseudo-query
  stands in for this;
* **constant query**: the cosine between a caption and the mean of *all* training captions: what a
  query that ignores the video reaches (the "narrow cone" baseline); the gap between the two
  is what a pseudo-query can gain by looking at the video.
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from report import ROOT, machine, write_report

from pig_lightning.data.worlds.scene_plans import SETTINGS, SceneVideosConfig, caption_agreement, plan_videos
from pig_lightning.weights.hf_folder import load_tokenizer
from pig_lightning.models import FrameCLIPBackbone

SHIPPED = str(ROOT / "assets" / "clip-tiny-scenes")


@torch.no_grad()
def encode(backbone: FrameCLIPBackbone, tokenizer, captions: list[str]) -> torch.Tensor:
    out = []
    for start in range(0, len(captions), 512):
        batch = tokenizer(captions[start:start + 512], padding="max_length", truncation=True, max_length=24,
                          return_tensors="pt")
        out.append(F.normalize(backbone.encode_text(batch["input_ids"], batch["attention_mask"]), dim=-1))
    return torch.cat(out)


def statistics_of(setting: str, backbone: FrameCLIPBackbone, tokenizer) -> dict[str, float]:
    records = plan_videos(SceneVideosConfig(setting=setting))
    train = [r for r in records if r["split"] == "train"]
    test = [r for r in records if r["split"] == "test"]
    constant = F.normalize(encode(backbone, tokenizer, [c for r in train for c in r["captions"]]).mean(0), dim=0)
    own, flat = [], []
    for record in test:
        emb = encode(backbone, tokenizer, record["captions"])
        for i in range(len(emb)):
            others = torch.cat([emb[:i], emb[i + 1:]])
            own.append(float(emb[i] @ F.normalize(others.mean(0), dim=0)))
            flat.append(float(emb[i] @ constant))
    return {"overlap": caption_agreement(test), "video_only": statistics.fmean(own), "constant": statistics.fmean(flat),
            "captions": len(own)}


def main() -> None:
    tokenizer = load_tokenizer(SHIPPED)
    backbone = FrameCLIPBackbone(pretrained=SHIPPED, tokenizer=SHIPPED, image_size=32, max_text_length=24).eval()
    rows = {setting: statistics_of(setting, backbone, tokenizer) for setting in SETTINGS}
    lines = [
        "# Caption agreement per quality-benchmark setting",
        "",
        f"Command: `python benchmarks/caption_agreement.py`. Machine: {machine()}.",
        "",
        __doc__.split("\n\n", 2)[2].strip(),
        "",
        "Test split (200 videos, 4 captions each), default parameters of each setting; text space of the shipped "
        "pretrained tiny CLIP (before any fine-tuning).",
        "",
        "| setting | event overlap (Jaccard) | best video-only query: cos with a held-out caption | constant query: cos | "
        "gap |",
        "|---|---|---|---|---|",
    ]
    for setting, r in rows.items():
        lines.append(f"| `{setting}` | {r['overlap']:.2f} | {r['video_only']:.3f} | {r['constant']:.3f} | "
                     f"{r['video_only'] - r['constant']:+.3f} |")
        print(setting, r, flush=True)
    write_report("docs/caption_agreement.md", lines + [""])


if __name__ == "__main__":
    main()
