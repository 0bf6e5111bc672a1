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

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pig_lightning.atomic import atomic_path

TEXT_BATCH = 256


def pyplot():
    """matplotlib's pyplot on the Agg backend; a clear error when the ``plots`` extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("drawing charts needs matplotlib: pip install 'pig-lightning[plots]'") from exc
    return plt


@dataclass
class VideoInput:
    path: Path
    video_id: str
    start: float | None = None
    end: float | None = None
    captions: tuple[str, ...] = ()


# ----- the numbers ------------------------------------------------------------------------------
@torch.no_grad()
def encode_captions(module, tokenizer, captions: list[str], batch: int = TEXT_BATCH) -> torch.Tensor:
    """Normalised text embeddings ``[M, D]`` of ``captions``, as ``search`` encodes queries."""
    backbone = module.tower.backbone
    device = next(module.parameters()).device
    parts = []
    for start in range(0, len(captions), batch):
        tokens = tokenizer(captions[start : start + batch], padding="max_length", truncation=True,
                           max_length=backbone.max_text_length, return_tensors="pt").to(device)
        parts.append(module.encode_texts(tokens["input_ids"], tokens["attention_mask"]).float())
    if not parts:
        return torch.zeros(0, backbone.embed_dim, device=device)
    return torch.cat(parts)


def embed_captions(module, tokenizer, captions: list[str], known: Mapping[str, torch.Tensor] | None = None
                   ) -> torch.Tensor:
    """:func:`encode_captions`, or the rows of ``known`` (caption -> embedding, e.g. what a
    validation already computed) when it holds every caption; then no tokenizer is needed."""
    if known is not None and captions and all(c in known for c in captions):
        device = next(module.parameters()).device
        return torch.stack([known[c] for c in captions]).to(device).float()
    return encode_captions(module, tokenizer, captions)


def selected_patches(tower, out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(positions [k], scores [k] or None)``: the patch tokens ``tower.select_tokens`` gathers for
    one video, in its order (informative: by score, best first)."""
    from pig_lightning.models.token_selection import select_informative_tokens, select_random_tokens

    if tower.token_selection == "informative":
        _, positions = select_informative_tokens(out, tower.num_selected, tower.head_reduction)
        attention = out.global_attention
        reduced = attention.amax(dim=1)[:, 0] if tower.head_reduction == "max" else attention.mean(dim=1)[:, 0]
        return positions[0], reduced[0, positions[0]]
    fixed = torch.Generator(device=out.tokens.device).manual_seed(tower.random_tokens_seed)
    _, positions = select_random_tokens(out, tower.num_selected, generator=fixed, shared=True)
    return positions[0], None


def _ranked(texts: list[str], values: torch.Tensor, top: int, key: str) -> list[dict[str, Any]]:
    order = values.argsort(descending=True)[:top].tolist()
    return [{"caption": texts[i], key: float(values[i])} for i in order]


@torch.no_grad()
def explain_frames(module, tokenizer, frames: torch.Tensor, bank: list[str], own: list[str] = (),
                   query: str | None = None, top: int = 5,
                   text_embeddings: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The numbers of an explanation for one clip: ``frames`` are CLIP-normalised ``[T, 3, H, W]``.
    ``text_embeddings``: captions already encoded (see :func:`embed_captions`)."""
    tower = module.tower
    device = next(module.parameters()).device
    x = frames[None].to(device)
    kind = tower.kind
    result: dict[str, Any] = {"tower": type(tower).__name__, "kind": kind, "num_frames": int(frames.shape[0])}
    own = list(own)
    bank_emb = embed_captions(module, tokenizer, bank, text_embeddings)
    own_emb = embed_captions(module, tokenizer, own, text_embeddings)
    video = module.encode_videos(x).float()  # [1, D] or [1, T, D]
    if bank:
        result["nearest_captions"] = _ranked(bank, module.score(bank_emb, video)[:, 0], top, "score")
    own_rows = [{"caption": c, "score": float(s)} for c, s in zip(own, module.score(own_emb, video)[:, 0])] if own else []
    if query is not None:
        q = embed_captions(module, tokenizer, [query], text_embeddings)
        result["query"] = {"text": query, "score": float(module.score(q, video)[0, 0])}
    if kind == "single-tower" and hasattr(tower, "pool"):
        if query is None:
            raise ValueError(f"{type(tower).__name__} is a single tower: its attention over the frames depends on the "
                             "query; give --query")
        keys, _ = tower.pool.project_tokens(video[0])  # [T, D]
        result["frame_attention"] = tower.pool.weights(q[0], keys).tolist()
    if hasattr(tower, "video_outputs"):  # PIG
        out = tower.backbone.forward_video(x)
        summary = out.global_and_frame_cls()  # [1, 4 + T, D]
        names = ["video CLS", "proxy 1", "proxy 2", "proxy 3"] + [f"frame {t + 1}" for t in range(out.num_frames)]
        _, pseudo_query = tower.video_outputs(x)
        fusion_query = summary[:, 0] if pseudo_query is None else pseudo_query
        keys, _ = tower.fusion.project_tokens(summary)
        weights = tower.fusion.weights(fusion_query, keys)[0]
        result["fusion_attention"] = {"query": "video CLS" if pseudo_query is None else "pseudo-query",
                                      "tokens": names, "weights": weights.tolist()}
        if pseudo_query is not None:
            positions, scores = selected_patches(tower, out)
            per_frame = out.tokens_per_frame
            grid = int(round((per_frame - 1) ** 0.5))
            patch_px = tower.backbone.image_size / grid
            selected = []
            for rank, position in enumerate(positions.tolist(), start=1):
                frame, slot = divmod(position - 4, per_frame)
                patch = slot - 1
                row, col = divmod(patch, grid)
                entry = {"rank": rank, "position": position, "frame": frame, "patch": patch, "row": row, "col": col,
                         "box": [col * patch_px, row * patch_px, patch_px, patch_px]}
                if scores is not None:
                    entry["attention"] = float(scores[rank - 1])
                selected.append(entry)
            result["token_selection"] = {"mode": tower.token_selection, "head_reduction": tower.head_reduction,
                                         "num_selected": tower.num_selected, "grid": grid, "selected": selected}
            pq = F.normalize(pseudo_query.float(), dim=-1)
            if bank:
                result["pseudo_query_nearest_captions"] = _ranked(bank, (bank_emb @ pq[0]), top, "cosine")
            for row_, emb in zip(own_rows, own_emb):
                row_["pseudo_query_cosine"] = float(emb @ pq[0])
    if own:
        result["own_captions"] = own_rows
    return result


# ----- inputs -----------------------------------------------------------------------------------
def read_lines(path: str | Path, what: str) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{what} {path} holds no caption")
    return lines


def _records(path: str | Path, format: str):
    from pig_lightning.data.formats import read_annotations

    if not Path(path).is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    return read_annotations(path, format)


def find_video(video: str | None, video_id: str | None, annotations: str | None, video_root: str | None,
               format: str = "jsonl") -> VideoInput:
    from pig_lightning.data.datasets import resolve_video_path

    if video is not None:
        path = Path(video)
        if not path.exists():
            raise FileNotFoundError(f"--video not found: {path}")
        captions: tuple[str, ...] = ()
        if annotations is not None:  # its captions, when the annotations know the file
            for record in _records(annotations, format):
                root = Path(video_root) if video_root else Path(annotations).parent
                if resolve_video_path(root, record).resolve() == path.resolve():
                    return VideoInput(path, record.video_id, record.start, record.end, tuple(record.captions))
        return VideoInput(path, path.stem, captions=captions)
    records = _records(annotations, format)
    for record in records:
        if record.video_id == video_id:
            root = Path(video_root) if video_root else Path(annotations).parent
            path = resolve_video_path(root, record)
            if not path.exists():
                raise FileNotFoundError(f"video {video_id!r} of {annotations}: {path} does not exist (--video_root?)")
            return VideoInput(path, video_id, record.start, record.end, tuple(record.captions))
    raise ValueError(f"video id {video_id!r} is not in {annotations} ({len(records)} videos)")


def caption_bank(captions: str | None, bank_annotations: str | None, annotations: str | None,
                 format: str = "jsonl") -> tuple[list[str], str]:
    """The captions to compare with and where they come from (duplicates dropped, order kept)."""
    if captions is not None:
        texts, source = read_lines(captions, "--captions file"), str(captions)
    elif bank_annotations is not None or annotations is not None:
        source = bank_annotations if bank_annotations is not None else annotations
        texts = [c for record in _records(source, format) for c in record.captions]
        if not texts:
            raise ValueError(f"{source} holds no caption")
    else:
        raise ValueError("no caption bank: give --captions FILE (one per line), --caption_bank ANNOTATIONS "
                         "(e.g. the training set) or --annotations")
    return list(dict.fromkeys(texts)), str(source)


# ----- the picture ------------------------------------------------------------------------------
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


def figure_array(fig, dpi: float = 72, margin: int = 6) -> np.ndarray:
    """``uint8 [H, W, 3]`` pixels of ``fig`` at ``dpi``, white borders cut to ``margin`` pixels
    (as ``bbox_inches="tight"`` does for the PNG); the figure is closed."""
    plt = pyplot()
    try:
        fig.set_dpi(dpi)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    finally:
        plt.close(fig)
    inked = np.argwhere((pixels < 250).any(axis=-1))
    if not len(inked):
        return pixels.copy()
    (top, left), (bottom, right) = inked.min(axis=0), inked.max(axis=0)
    return pixels[max(0, top - margin) : bottom + margin + 1, max(0, left - margin) : right + margin + 1].copy()


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
def explain(ckpt_path: str | Path, video: VideoInput, bank: list[str], bank_source: str, output: str | Path | None,
            query: str | None = None, top: int = 5, display_size: int = 160, device: str = "cpu") -> dict[str, Any]:
    """Load ``ckpt_path``, read ``video`` as ``index`` does, return the numbers and draw the PNG."""
    from pig_lightning.data.readers import ClipReader
    from pig_lightning.data.sampling import uniform_indices
    from pig_lightning.data.transforms import to_clip_tensor
    from pig_lightning.weights.hf_folder import load_tokenizer
    from pig_lightning.load import load_model
    from pig_lightning.retrieval.indexer import trained_setting

    module = load_model(ckpt_path, device)
    backbone = module.tower.backbone
    resize = trained_setting(module, "resize", None, "squash")
    interpolation = trained_setting(module, "interpolation", None, "BICUBIC")
    num_frames, size = module.tower.num_frames, backbone.image_size
    sampler = lambda n: uniform_indices(n, num_frames)  # noqa: E731
    frames, indices = ClipReader(size, resize=resize, interpolation=interpolation).read(
        video.path, sampler, video.start, video.end)
    tokenizer = load_tokenizer(backbone.tokenizer_source)
    result = {"video": str(video.path), "video_id": video.video_id, "frame_indices": [int(i) for i in indices],
              "image_size": size, "caption_bank": bank_source, "caption_bank_size": len(bank)}
    result.update(explain_frames(module, tokenizer, to_clip_tensor(frames), bank, video.captions, query, top))
    if output is not None:
        shown = frames
        if display_size > size:
            shown, _ = ClipReader(display_size, resize=resize, interpolation=interpolation).read(
                video.path, sampler, video.start, video.end)
        render(result, shown, output)
    return result
