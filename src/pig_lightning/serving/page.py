"""The search page of ``pig-lightning serve``: static HTML plus one script (``/page.js``).

The script asks ``/search`` for JSON and builds the results with ``textContent`` and element
properties only: no gallery or user text is ever parsed as HTML. The page runs the query of its
``?q=`` URL parameter on load (``&k=``: how many, ``&play=N``: open the N-th clip), so a results
page can be linked (and opened by a headless browser).
"""

from __future__ import annotations

import json
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 1.5em; color: #222; }
h1 { font-size: 1.2em; margin: 0 0 0.6em; } .meta { color: #666; font-size: 0.85em; }
form { display: flex; gap: 0.5em; align-items: center; margin-bottom: 0.6em; }
#q { flex: 1; max-width: 42em; font-size: 1em; padding: 0.35em; } #k { width: 4em; }
#layout { display: flex; gap: 1.5em; align-items: flex-start; }
#results { flex: 1; list-style: none; padding: 0; margin: 0; }
#results li { display: flex; align-items: center; gap: 0.8em; padding: 4px 6px; cursor: pointer;
              border-left: 4px solid transparent; }
#results li:hover { background: #f3f3f3; } #results li.playing { border-left-color: #36c; background: #eef3ff; }
.rank { width: 2.2em; color: #888; text-align: right; } .score { width: 4.5em; font-family: monospace; }
.id { font-family: monospace; min-width: 10em; } .strip img { height: 56px; margin-right: 2px; vertical-align: middle; }
#player { position: sticky; top: 1em; width: 400px; } #player video { width: 400px; background: #000; }
#error { color: #a22; } #nowplaying { font-family: monospace; font-size: 0.9em; }
"""


def render_page(title: str, videos: int, max_k: int, max_query_chars: int, playback_note: str | None,
                default_k: int = 10) -> str:
    """The page; every text is escaped, the settings travel to the script as escaped JSON."""
    settings = json.dumps({"maxK": max_k, "maxQueryChars": max_query_chars, "defaultK": min(default_k, max_k)})
    settings = settings.replace("<", "\\u003c")  # raw text inside <script>: no "</script>" can appear
    playback = ("click a result to play its clip" if playback_note is None
                else f"playback unavailable: {playback_note}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<form id="form" autocomplete="off">
  <input id="q" name="q" type="search" placeholder="describe a video" maxlength="{max_query_chars}" required>
  <label>top <input id="k" name="k" type="number" min="1" max="{max_k}" value="{min(default_k, max_k)}"></label>
  <button type="submit">Search</button>
</form>
<p class="meta"><span id="status">{videos:,} videos in the gallery</span> &middot; {escape(playback)}</p>
<p id="error" role="alert"></p>
<div id="layout">
  <ol id="results"></ol>
  <div id="player" hidden><video id="video" controls muted playsinline></video><div id="nowplaying"></div></div>
</div>
<script id="settings" type="application/json">{settings}</script>
<script src="page.js"></script>
</body></html>
"""


SCRIPT = r"""
"use strict";
const settings = JSON.parse(document.getElementById("settings").textContent);
const form = document.getElementById("form"), qBox = document.getElementById("q"), kBox = document.getElementById("k");
const list = document.getElementById("results"), errorLine = document.getElementById("error");
const statusLine = document.getElementById("status");
const player = document.getElementById("player"), video = document.getElementById("video");
const nowPlaying = document.getElementById("nowplaying");
const params = new URLSearchParams(location.search);
let clipEnd = null, autoplay = parseInt(params.get("play") || "0", 10);  // ?play=N: open the N-th clip once

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function play(item, row) {
  for (const other of list.children) other.classList.remove("playing");
  row.classList.add("playing");
  player.hidden = false;
  if (!item.video_url) {
    video.removeAttribute("src");
    nowPlaying.textContent = item.video_id + ": playback unavailable";
    return;
  }
  const start = item.start ?? 0;
  clipEnd = item.end ?? null;
  // a media fragment, and the same bounds enforced here for browsers that ignore it
  video.src = item.video_url + "#t=" + start + (clipEnd !== null ? "," + clipEnd : "");
  video.onloadedmetadata = () => { if (Math.abs(video.currentTime - start) > 0.25) video.currentTime = start; };
  nowPlaying.textContent = item.video_id + (item.end !== null || item.start !== null
    ? "  [" + start.toFixed(1) + " s - " + (clipEnd !== null ? clipEnd.toFixed(1) + " s" : "end") + "]" : "");
  video.play().catch(() => {});
}

video.addEventListener("loadeddata", () => { video.dataset.loaded = video.currentSrc; });
video.addEventListener("timeupdate", () => {
  if (clipEnd !== null && video.currentTime >= clipEnd) video.pause();
});

function show(data) {
  list.replaceChildren();
  for (const item of data.results) {
    const row = element("li");
    row.dataset.videoId = item.video_id;
    row.append(element("span", "rank", item.rank + "."), element("span", "score", item.score.toFixed(4)),
               element("span", "id", item.video_id));
    const strip = element("span", "strip");
    for (const src of item.thumbnails) {
      const img = element("img");
      img.alt = "";
      img.src = src;
      strip.append(img);
    }
    row.append(strip);
    row.addEventListener("click", () => play(item, row));
    list.append(row);
  }
  statusLine.textContent = data.results.length + " results for \u201c" + data.query + "\u201d in " + data.ms + " ms";
  if (autoplay >= 1 && autoplay <= data.results.length) play(data.results[autoplay - 1], list.children[autoplay - 1]);
  autoplay = 0;
}

async function search(q, k) {
  errorLine.textContent = "";
  const started = performance.now();
  try {
    const response = await fetch("search?" + new URLSearchParams({q: q, k: k}));
    const data = await response.json();
    if (!response.ok) {
      list.replaceChildren();
      errorLine.textContent = data.error || ("error " + response.status);
      return;
    }
    data.ms = Math.round(performance.now() - started);
    show(data);
  } catch (err) {
    errorLine.textContent = "the server did not answer: " + err;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const q = qBox.value, k = kBox.value || settings.defaultK;
  history.replaceState(null, "", "?" + new URLSearchParams({q: q, k: k}));
  search(q, k);
});

if (params.get("k")) kBox.value = params.get("k");
if (params.get("q")) {
  qBox.value = params.get("q");
  search(params.get("q"), kBox.value || settings.defaultK);
}
"""
