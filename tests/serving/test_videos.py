"""``/video/{id}``: only files of gallery entries, inside the video root; Range requests work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from pig_lightning.retrieval import Gallery  # noqa: E402
from pig_lightning.serving.app import create_app  # noqa: E402


class Stub:
    """What ``create_app`` needs of a Retriever: a gallery and ``search``."""

    def __init__(self, gallery: Gallery):
        self.gallery = gallery

    def search(self, texts, k):
        return [[(v, 1.0) for v in self.gallery.video_ids[:k]]]


def gallery_of(paths: dict[str, str], root: Path | None, clips: dict | None = None) -> Gallery:
    ids = list(paths)
    sources = [{"path": paths[v], "start": (clips or {}).get(v, (None, None))[0],
                "end": (clips or {}).get(v, (None, None))[1]} for v in ids]
    return Gallery(torch.zeros(len(ids), 4, dtype=torch.float16), ids, {"tower": "T"}, {},
                   str(root) if root else None, sources)


@pytest.fixture()
def layout(tmp_path, synthetic_root):
    """A video root with a real mp4, a symlink inside pointing outside, one pointing inside, a
    folder, and a secret file beside the root."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    mp4 = next((Path(synthetic_root) / "videos").glob("*.mp4"))
    shutil.copy(mp4, root / "sub" / "clip.mp4")
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the client")
    os.symlink(secret, root / "escape.mp4")
    os.symlink(root / "sub" / "clip.mp4", root / "alias.mp4")
    (root / "frames").mkdir()
    return root, secret


def client_for(layout, clips=None) -> TestClient:
    root, secret = layout
    paths = {"clip": "sub/clip.mp4", "escape": "escape.mp4", "alias": "alias.mp4", "dotdot": "../secret.mp4",
             "absolute": str(secret), "frames": "frames", "missing": "sub/none.mp4", "../../secret": "sub/clip.mp4"}
    return TestClient(create_app(Stub(gallery_of(paths, root, clips))))


def assert_refused(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"] and "not for the client" not in response.text


def test_serves_the_file_with_range_support(layout):
    root, _ = layout
    client, data = client_for(layout), (root / "sub" / "clip.mp4").read_bytes()
    full = client.get("/video/clip")
    assert full.status_code == 200 and full.content == data and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get("/video/clip", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == data[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(data)}"
    assert client.get("/video/alias").content == data  # a symlink that stays inside the root is fine
    assert client.head("/video/clip").status_code == 200


def test_paths_from_the_client_are_never_used(layout):
    client = client_for(layout)
    for url in ("/video/..%2F..%2Fetc%2Fpasswd", "/video/%2E%2E/secret.mp4", "/video/sub/clip.mp4",
                "/video/%2Fetc%2Fpasswd", "/video/..%2Fsecret.mp4"):
        assert_refused(client.get(url), 404, "")
    # an id that looks like a path is only a key: it plays its own recorded file
    root, _ = layout
    assert client.get("/video/..%2F..%2Fsecret").content == (root / "sub" / "clip.mp4").read_bytes()


@pytest.mark.parametrize("video_id, status, fragment", [
    ("escape", 403, "outside the video root"),     # symlink inside the root pointing outside
    ("dotdot", 403, "outside the video root"),     # a recorded path leaving the root
    ("absolute", 403, "outside the video root"),   # recorded outside (index --outside_root allow)
    ("frames", 404, "not a file"),
    ("missing", 404, "missing"),
])
def test_gallery_entries_outside_the_root_or_not_files_are_refused(layout, video_id, status, fragment):
    assert_refused(client_for(layout).get(f"/video/{video_id}"), status, fragment)


def test_clip_bounds_reach_the_results(layout):
    body = client_for(layout, clips={"clip": (1.5, 3.0)}).get("/search?q=a&k=1").json()
    assert body["results"][0] | {"thumbnails": []} == {"rank": 1, "video_id": "clip", "score": 1.0, "thumbnails": [],
                                                       "video_url": "/video/clip", "start": 1.5, "end": 3.0}


def test_old_gallery_and_missing_root_mean_no_playback(layout):
    root, _ = layout
    old = Gallery(torch.zeros(1, 4), ["clip"], {"tower": "T"}, {})  # no sources recorded
    client = TestClient(create_app(Stub(old), video_root=str(root)))
    assert client.get("/health").json()["playback"] is False
    assert client.get("/search?q=a").json()["results"][0]["video_url"] is None
    assert_refused(client.get("/video/clip"), 404, "does not record its video files")
    assert "playback unavailable: this gallery does not record its video files" in client.get("/").text
    no_root = TestClient(create_app(Stub(gallery_of({"clip": "sub/clip.mp4"}, None))))
    assert_refused(no_root.get("/video/clip"), 404, "--video_root")
    # --video_root overrides the recorded root
    moved = TestClient(create_app(Stub(gallery_of({"clip": "sub/clip.mp4"}, Path("/nonexistent"))), video_root=str(root)))
    assert moved.get("/video/clip").status_code == 200
