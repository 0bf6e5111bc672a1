"""The figures and text of an explanation: frames with the patches the model selected, its
pseudo-query's nearest captions, written as a PNG or as lines."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from pig_lightning.atomic import atomic_path
from pig_lightning.plotting import figure_array, pyplot

__all__ = ["describe", "explanation_figure", "figure_array", "render"]


def _short(text: str, width: int = 100) -> str:
    return textwrap.shorten(text, width=width, placeholder="...")


def describe(result: dict[str, Any]) -> list[str]:
    """The text under the frames (also what ``explain`` prints without ``--json``)."""
    indices = result.get("frame_indices")
    lines = [f"{result['video_id']}: {result['tower']} ({result['kind']}), {result['num_frames']} frames"
             + (f" {indices}" if indices is not None else "")]
    selection = result.get("token_selection")
    if selection:
        how = (f"video CLS row of the last layer's attention, {selection['head_reduction']} over heads"
               if selection["mode"] == "informative" else "a fixed random draw (ablation)")
        lines.append(f"outlined: the {selection['num_selected']} patches token selection chose ({how}); "
                     "1 = first")
    fusion = result.get("fusion_attention")
    if fusion:
        pairs = sorted(zip(fusion["weights"], fusion["tokens"]), reverse=True)[:4]
        lines.append(f"fusion attention of the {fusion['query']}: " + ", ".join(f"{n} {w:.2f}" for w, n in pairs))
    if "query" in result:
        lines.append(f"query {_short(result['query']['text'], 80)!r}: score {result['query']['score']:.3f}")
    if "frame_attention" in result:
        lines.append("attention of the query over the frames: "
                     + " ".join(f"{w:.2f}" for w in result["frame_attention"]))
    if "pseudo_query_nearest_captions" in result:
        lines.append(f"pseudo-query's nearest captions (cosine; bank: {result['caption_bank']}):")
        lines += [f"  {r['cosine']:+.3f}  {_short(r['caption'])}" for r in result["pseudo_query_nearest_captions"]]
    if "nearest_captions" in result:
        lines.append("captions the model ranks highest for this video (score):")
        lines += [f"  {r['score']:+.3f}  {_short(r['caption'])}" for r in result["nearest_captions"]]
    if result.get("own_captions"):
        pq = "pseudo_query_cosine" in result["own_captions"][0]
        lines.append("its own captions: score" + (" / pseudo-query cosine" if pq else ""))
        lines += [f"  {r['score']:+.3f}" + (f" / {r['pseudo_query_cosine']:+.3f}" if pq else "")
                  + f"  {_short(r['caption'])}" for r in result["own_captions"]]
    return lines


def explanation_figure(result: dict[str, Any], frames: np.ndarray):
    """The picture of an explanation as a matplotlib figure (the caller closes it): ``frames``
    (``uint8 [T, S, S, 3]``, any display size) in a row with the selected patches outlined and
    ranked, the text of :func:`describe` below. :func:`render` writes it as a PNG; the
    TensorBoard callback (``pig_lightning.training.qualitative``) logs it as an image."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    t = len(frames)
    lines = describe(result)
    scale = frames.shape[1] / result["image_size"]
    by_frame: dict[int, list[dict]] = {}
    for entry in (result.get("token_selection") or {}).get("selected", []):
        by_frame.setdefault(entry["frame"], []).append(entry)
    weights = result.get("frame_attention")
    if weights is None and result.get("fusion_attention"):
        weights = result["fusion_attention"]["weights"][4:]
    indices = result.get("frame_indices")
    width = max(10.0, 1.7 * t)
    text_height = 0.16 * len(lines) + 0.1
    fig = plt.figure(figsize=(width, width / t + 0.5 + text_height))
    grid = fig.add_gridspec(2, t, height_ratios=[width / t + 0.5, text_height], hspace=0.05, wspace=0.04)
    cmap = plt.get_cmap("autumn")
    k = max(1, len((result.get("token_selection") or {}).get("selected", [])))
    for i in range(t):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(frames[i], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        title = f"#{indices[i]}" if indices is not None else f"frame {i + 1}"
        if weights is not None:
            title += f"  a={weights[i]:.2f}"
        ax.set_title(title, fontsize=8)
        for entry in by_frame.get(i, []):
            x, y, w, h = (v * scale for v in entry["box"])
            colour = cmap((entry["rank"] - 1) / k)
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=colour, linewidth=1.6))
            ax.text(x + 1, y + 1, str(entry["rank"]), color="black", fontsize=6, va="top", ha="left",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 0.6, "alpha": 0.9})
    text_ax = fig.add_subplot(grid[1, :])
    text_ax.axis("off")
    text_ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=7.5, va="top", ha="left",
                 transform=text_ax.transAxes)
    return fig


def render(result: dict[str, Any], frames: np.ndarray, output: str | Path) -> Path:
    """:func:`explanation_figure` written atomically as a PNG."""
    plt = pyplot()
    fig = explanation_figure(result, frames)
    output = Path(output)
    try:
        with atomic_path(output) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return output


# ----- the command ------------------------------------------------------------------------------
