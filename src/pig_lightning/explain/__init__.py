"""``pig-lightning explain``: what a trained model makes of one video.

    pig-lightning explain --ckpt_path best.ckpt --video clip.mp4 --captions bank.txt --output explain.png
    pig-lightning explain --ckpt_path best.ckpt --video_id video7 --annotations test.jsonl --json

One PNG (the sampled frames in a row, with what the tower looked at) and, with ``--json``, the
numbers behind it on stdout:

* every tower: the frames it samples (uniform, as ``index`` and ``test`` do) and the captions of a
  caption bank it scores highest for the video (``score``, as ``search`` would rank them);
* PIG (hybrid): the patch tokens its informative token selection chose (the video CLS row of the
  last layer's attention, reduced over heads, ``num_selected`` of them) outlined on their frames
  with their rank; the captions nearest to the pseudo-query (cosine) -- what the generator
  "thinks the video is about" -- and the fusion's attention of the pseudo-query over the video
  CLS, proxies and frame CLS tokens;
* X-Pool (single tower): the attention of a ``--query`` over the frames, and its score;
* with the video's own captions (``--video_id`` with ``--annotations``): the score of each, and
  for PIG the cosine of the pseudo-query to each.

The caption bank is ``--captions`` (one per line), else every caption of ``--caption_bank`` (an
annotation file, e.g. the training set), else every caption of ``--annotations``.
"""

from pig_lightning.explain.compute import (
    VideoInput,
    caption_bank,
    embed_captions,
    encode_captions,
    explain,
    explain_frames,
    find_video,
    read_lines,
)
from pig_lightning.explain.figures import describe, explanation_figure, render

__all__ = ["VideoInput", "caption_bank", "describe", "embed_captions", "encode_captions", "explain", "explain_frames",
           "explanation_figure", "find_video", "read_lines", "render"]
