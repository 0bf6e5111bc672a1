"""A search results page (``pig-lightning search --html``): one self-contained HTML file.

For each query, its top-k videos as thumbnail strips (data: URIs, from the gallery's thumbnails
sidecar) with their rank, id and score; the true video is marked when it is known. Every text
(queries, ids) is HTML-escaped; without thumbnails the page shows ids and scores only.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from pig_lightning.atomic import atomic_path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.2em; } .meta { color: #666; font-size: 0.85em; }
section { margin: 1.2em 0; border-top: 1px solid #ddd; padding-top: 0.6em; }
h2 { font-size: 1em; font-weight: 600; margin: 0.2em 0 0.5em; }
ol { list-style: none; padding: 0; margin: 0; }
li { display: flex; align-items: center; gap: 0.8em; padding: 3px 6px; border-left: 4px solid transparent; }
li.true { border-left-color: #2a2; background: #efe; }
.rank { width: 2.2em; color: #888; text-align: right; } .score { width: 4.5em; font-family: monospace; }
.id { font-family: monospace; min-width: 10em; } .strip img { height: 64px; margin-right: 2px; vertical-align: middle; }
.tag { color: #2a2; font-weight: 600; } .miss { color: #a22; font-size: 0.85em; }
"""


def render_page(queries: list[str], results: list[list[tuple[str, float]]], thumbnails: dict[str, list[str]] | None = None,
                truth: dict[str, set[str]] | None = None, title: str = "pig-lightning search") -> str:
    """The page as a string. ``truth`` maps a query to its true video ids (from annotations)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    parts.append(f'<p class="meta">{len(queries)} queries; '
                 + ("thumbnails from the gallery's sidecar" if thumbnails else "no thumbnails (index with --thumbnails N)")
                 + "</p>")
    for number, (query, hits) in enumerate(zip(queries, results), start=1):
        true_ids = (truth or {}).get(query, set())
        parts.append(f"<section><h2>{number}. {escape(query)}</h2><ol>")
        for rank, (video_id, score) in enumerate(hits, start=1):
            is_true = video_id in true_ids
            strip = "".join(f'<img alt="" src="data:image/jpeg;base64,{escape(b64)}">'
                            for b64 in (thumbnails or {}).get(video_id, []))
            parts.append(f'<li class="{"true" if is_true else ""}"><span class="rank">{rank}.</span>'
                         f'<span class="score">{score:.4f}</span><span class="id">{escape(video_id)}</span>'
                         f'<span class="strip">{strip}</span>' + ('<span class="tag">true video</span>' if is_true else "")
                         + "</li>")
        parts.append("</ol>")
        if true_ids and not true_ids & {v for v, _ in hits}:
            parts.append(f'<p class="miss">true video {escape(", ".join(sorted(true_ids)))} not in the top {len(hits)}</p>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path: str | Path, *args, **kwargs) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(render_page(*args, **kwargs), encoding="utf-8")
    return path
