"""``index --thumbnails`` and ``search --html``: one self-contained page, every text escaped."""

from __future__ import annotations

import json
import re

from pig_lightning.retrieval.thumbnails import load_thumbnails

from tests.helpers import synthetic_rows


def test_results_page_for_two_queries(ckpt, synthetic_root, tmp_path, run):
    gallery = tmp_path / "g.safetensors"
    result = run("index", "--ckpt_path", ckpt, "--videos", f"{synthetic_root}/val.jsonl", "--output", gallery,
                 "--thumbnails", 2, "--thumbnail_size", 16, "--num_workers", 0, "--dtype", "float32")
    assert result.code == 0, result.err
    thumbs = load_thumbnails(tmp_path / "g.safetensors.thumbs.json")
    rows = synthetic_rows(synthetic_root, "val")
    assert sorted(thumbs) == sorted(r["video_id"] for r in rows) and all(len(v) == 2 for v in thumbs.values())
    caption = rows[4]["captions"][0]
    queries = tmp_path / "queries.txt"
    queries.write_text(f"{caption}\n<script>alert('x')</script> & more\n")
    page = tmp_path / "page.html"
    result = run("search", "--index", gallery, "--ckpt_path", ckpt, "--queries_file", queries, "--top-k", 3,
                 "--json", "--html", page, "--annotations", f"{synthetic_root}/val.jsonl")
    assert result.code == 0, result.err
    hits = [json.loads(line) for line in result.out.splitlines()]
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    for hit in hits:
        for item in hit["results"]:
            assert f'<span class="id">{item["video_id"]}</span>' in html and f"{item['score']:.4f}" in html
    assert len(re.findall(r'src="data:image/jpeg;base64,', html)) == 2 * 3 * 2
    true_id = rows[4]["video_id"]
    marked = re.findall(r'<li class="true">.*?<span class="id">([^<]*)</span>', html)
    in_top = true_id in [item["video_id"] for item in hits[0]["results"]]
    assert marked == ([true_id] if in_top else []) and (in_top or f"true video {true_id} not in the top 3" in html)


def test_page_without_thumbnails_and_bad_inputs(gallery, ckpt, tmp_path, run):
    page = tmp_path / "page.html"
    result = run("search", "--index", gallery, "--ckpt_path", ckpt, "--query", "a red circle", "--html", page)
    assert result.code == 0 and "no thumbnails" in page.read_text() and "data:image" not in page.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for extra, expected in ((["--html", tmp_path], "is a folder"),
                            (["--html", page, "--thumbnails", bad], "is not a pig-lightning thumbnails file"),
                            (["--html", page, "--annotations", tmp_path / "none.jsonl"], "--annotations not found"),
                            (["--annotations", tmp_path / "x.jsonl"], "go with --html")):
        result = run("search", "--index", gallery, "--ckpt_path", ckpt, "--query", "a", *extra)
        assert result.code == 2 and expected in result.err, result.err
