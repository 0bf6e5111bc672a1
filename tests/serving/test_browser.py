"""The real thing: ``pig-lightning serve`` in a subprocess (uvicorn), its page run by headless
Chromium from a ``?q=`` link; also the command's options and errors."""

from __future__ import annotations

import html
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from pig_lightning.cli import main
from pig_lightning.retrieval import Gallery

pytestmark = pytest.mark.slow  # trains or launches processes

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

HOSTILE = "<img src=x onerror=document.title='pwned'>"


def chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"serve did not answer {url} within {seconds} s")


@pytest.fixture()
def server(served_gallery, served_ckpt, tmp_path):
    """``pig-lightning serve`` on a free port over the test gallery with one id made of markup."""
    gallery = Gallery.load(served_gallery)
    thumbs = json.loads(Path(f"{served_gallery}.thumbs.json").read_text())
    thumbs["videos"][HOSTILE] = thumbs["videos"].pop(gallery.video_ids[0])
    gallery.video_ids[0] = HOSTILE
    index = gallery.save(tmp_path / "hostile.safetensors")
    (tmp_path / "hostile.safetensors.thumbs.json").write_text(json.dumps(thumbs))
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "pig_lightning.cli", "serve", "--index", str(index),
                                "--ckpt_path", str(served_ckpt), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}", gallery.video_ids
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_headless_chromium_runs_a_linked_query(server, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no headless Chromium on PATH (apt-get install chromium)")
    base, ids = server
    url = f"{base}/?q={quote('a red circle moves left')}&k=10&play=2"  # and open the second clip
    dom = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=90).stdout
    assert "10 results for" in dom, dom[-2000:]
    for video_id in ids:  # all 10 videos, each as the text of its row
        assert f'<span class="id">{html.escape(video_id, quote=False)}</span>' in dom
    assert HOSTILE not in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert dom.count('src="data:image/jpeg;base64,') == 10 * 2
    second = dom.split('<li data-video-id="')[2].split('"')[0]
    # the browser loaded the clip from /video/ (H.264 mp4, fetched with Range requests)
    assert f'data-loaded="{base}/video/{quote(html.unescape(second), safe="")}#t=0"' in dom, dom[-1500:]


def test_serve_help_and_bad_options(capsys, served_gallery, served_ckpt, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exc.value.code == 0 and "0.0.0.0 exposes" in out and "default 127.0.0.1" in out
    for extra, message in ((["--max_k", "0"], "--max_k and --max_query_chars must be >= 1"),
                           (["--port", "70000"], "--port must be from 0 to 65535"),
                           (["--threads", "0"], "--threads must be >= 1"),
                           (["--video_root", str(tmp_path / "none")], "--video_root is not a folder")):
        with pytest.raises(SystemExit) as exc:
            main(["serve", "--index", str(served_gallery), "--ckpt_path", str(served_ckpt), *extra])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--index", str(tmp_path / "none.safetensors"), "--ckpt_path", str(served_ckpt)])
    assert exc.value.code == 2 and "gallery file not found" in capsys.readouterr().err
