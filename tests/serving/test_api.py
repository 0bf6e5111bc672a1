"""The JSON API and the page of ``serve`` through FastAPI's TestClient (no server process)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from pig_lightning.retrieval import Gallery, Retriever  # noqa: E402
from pig_lightning.retrieval.thumbnails import load_thumbnails, thumbnails_path  # noqa: E402
from pig_lightning.serving.app import create_app  # noqa: E402
from pig_lightning.serving.memory import prepare  # noqa: E402
from pig_lightning.serving.page import SCRIPT  # noqa: E402


@pytest.fixture(scope="module")
def retriever(served_gallery, served_ckpt):
    loaded = Retriever(served_gallery, served_ckpt)
    prepare(loaded)
    return loaded


@pytest.fixture(scope="module")
def client(retriever, served_gallery):
    app = create_app(retriever, thumbnails=load_thumbnails(thumbnails_path(served_gallery)), max_k=8,
                     max_query_chars=50)
    return TestClient(app)


def assert_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and fragment in body["error"], body
    assert "Traceback" not in response.text and "File \"" not in response.text


def test_search_returns_the_retrievers_ranking_with_thumbnails_and_clips(client, retriever):
    response = client.get("/search", params={"q": "a red circle moves left", "k": 5})
    assert response.status_code == 200 and response.headers["server-timing"].startswith("search;dur=")
    body = response.json()
    want = retriever.search(["a red circle moves left"], 5)[0]
    assert body["query"] == "a red circle moves left" and body["k"] == 5
    assert [(r["video_id"], r["score"]) for r in body["results"]] == [(v, pytest.approx(s)) for v, s in want]
    for rank, item in enumerate(body["results"], start=1):
        assert item["rank"] == rank and item["start"] is None and item["end"] is None
        assert len(item["thumbnails"]) == 2 and all(t.startswith("data:image/jpeg;base64,") for t in item["thumbnails"])
        assert item["video_url"] == f"/video/{item['video_id']}"
    assert client.get("/search", params={"q": "a square"}).json()["k"] == 8  # default 10, capped by max_k


@pytest.mark.parametrize("params, fragment", [
    ({"q": "a", "k": 0}, "k must be from 1 to 8, got 0"),
    ({"q": "a", "k": 9}, "k must be from 1 to 8, got 9"),
    ({"q": "a", "k": -3}, "got '-3'"),
    ({"q": "a", "k": "ten"}, "k must be a whole number"),
    ({"q": "a", "k": "5_0"}, "k must be a whole number"),  # int() would read 50
    ({"q": "a", "k": "+3"}, "k must be a whole number"),
    ({"q": "a", "k": "\u0663"}, "k must be a whole number"),  # an Arabic-Indic 3
    ({"q": ""}, "the query is empty"),
    ({"q": "   "}, "the query is empty"),
    ({}, "the query is empty"),
    ({"q": "x" * 51}, "the query has 51 characters; at most 50"),
])
def test_bad_queries_and_k_are_400_with_a_message(client, params, fragment):
    assert_error(client.get("/search", params=params), 400, fragment)


def test_bounds_themselves_are_accepted(client):
    assert len(client.get("/search", params={"q": "y" * 50, "k": 8}).json()["results"]) == 8
    assert len(client.get("/search", params={"q": "a", "k": 1}).json()["results"]) == 1


def test_other_errors_are_json_too(client):
    assert_error(client.get("/no/such/page"), 404, "Not Found")
    assert_error(client.post("/search"), 405, "Method Not Allowed")
    assert_error(client.get("/video/nope"), 404, "no video with this id")


def test_an_unexpected_failure_is_a_json_500_without_traceback(retriever):
    class Broken:
        gallery = retriever.gallery

        def search(self, texts, k):
            raise RuntimeError("secret internal detail /home/user/model")

    response = TestClient(create_app(Broken()), raise_server_exceptions=False).get("/search?q=a")
    assert_error(response, 500, "internal error")
    assert "secret" not in response.text


def test_health_and_page(client):
    assert client.get("/health").json() == {"status": "ok", "videos": 10, "playback": True, "thumbnails": True,
                                            "tower": "MeanPoolingTower"}
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="page.js"></script>' in page.text and "click a result to play its clip" in page.text
    script = client.get("/page.js")
    assert script.headers["content-type"].startswith("text/javascript") and script.text == SCRIPT


def test_page_builds_results_from_text_only():
    """Gallery ids and queries reach the DOM through textContent and properties, never as HTML."""
    assert "innerHTML" not in SCRIPT and "outerHTML" not in SCRIPT and "insertAdjacentHTML" not in SCRIPT
    assert "document.write" not in SCRIPT and "textContent = text" in SCRIPT


def test_an_id_with_markup_travels_as_data(retriever, tmp_path):
    gallery = retriever.gallery
    hostile = "<script>x</script>"

    class Stub:
        def __init__(self):
            self.gallery = Gallery(gallery.embeddings, [hostile] + gallery.video_ids[1:], gallery.model,
                                   gallery.preprocessing, gallery.video_root, gallery.sources)

        def search(self, texts, k):
            return [[(hostile, 0.5)]]

    client = TestClient(create_app(Stub(), title="<b>t</b>"))
    response = client.get("/search?q=%3Cscript%3Ey%3C/script%3E")
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.text)["results"][0]["video_id"] == hostile
    assert response.json()["results"][0]["video_url"] == "/video/%3Cscript%3Ex%3C%2Fscript%3E"
    assert client.get(response.json()["results"][0]["video_url"]).status_code == 200
    page = client.get("/").text
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page


def test_host_guard(retriever):
    app = create_app(retriever, allowed_hosts=["127.0.0.1", "localhost"])
    assert_error(TestClient(app).get("/health"), 400, "unexpected Host header")  # Host: testserver
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/health").status_code == 200
    assert TestClient(app, base_url="http://localhost").get("/health").status_code == 200
