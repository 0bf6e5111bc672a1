"""The numbers of an explanation, computed by the tower itself: which patches it selected, the
captions nearest to its pseudo-query and to the fused video vector, and where the given captions rank."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pig_lightning.explain.figures import render


TEXT_BATCH = 256


@dataclass
class VideoInput:
    path: Path
    video_id: str
    start: float | None = None
    end: float | None = None
    captions: tuple[str, ...] = ()


# ----- the numbers ------------------------------------------------------------------------------
@torch.no_grad()


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
    from pig_lightning.data.sources.formats import read_annotations

    if not Path(path).is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    return read_annotations(path, format)


def find_video(video: str | None, video_id: str | None, annotations: str | None, video_root: str | None,
               format: str = "jsonl") -> VideoInput:
    from pig_lightning.data.sources.paths import resolve_video_path

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


def explain(ckpt_path: str | Path, video: VideoInput, bank: list[str], bank_source: str, output: str | Path | None,
            query: str | None = None, top: int = 5, display_size: int = 160, device: str = "cpu") -> dict[str, Any]:
    """Load ``ckpt_path``, read ``video`` as ``index`` does, return the numbers and draw the PNG."""
    from pig_lightning.data.video.readers import ClipReader
    from pig_lightning.data.video.sampling import uniform_indices
    from pig_lightning.data.video.transforms import to_clip_tensor
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
