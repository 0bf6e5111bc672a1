"""The FastAPI application of ``pig-lightning serve``: a search page over a :class:`Retriever`.

``GET /`` the page, ``GET /search?q=..&k=..`` JSON, ``GET /video/{id}`` the video file of a gallery
entry (Range requests: seeking), ``GET /health``. Every error is JSON ``{"error": "..."}``; the
traceback of an unexpected one goes to the server log, never to the client.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pig_lightning.serving.page import SCRIPT, render_page
from pig_lightning.serving.videos import VideoFiles, VideoUnavailable

log = logging.getLogger(__name__)

PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
               "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class BadRequest(Exception):
    """A request the page or a program got wrong: answered 400 with the message."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_k(k: str | None, default: int, max_k: int) -> int:
    if k is None or k == "":
        return default
    if not (k.isascii() and k.isdigit()):  # int() would also take " 7 ", "+3", "5_0" and other scripts' digits
        raise BadRequest(f"k must be a whole number from 1 to {max_k}, got {k[:20]!r}")
    value = int(k)
    if not 1 <= value <= max_k:
        raise BadRequest(f"k must be from 1 to {max_k}, got {value}")
    return value


def check_query(q: str | None, max_chars: int) -> str:
    if q is None or not q.strip():
        raise BadRequest("the query is empty: give one with ?q=")
    if len(q) > max_chars:
        raise BadRequest(f"the query has {len(q):,} characters; at most {max_chars:,} are accepted")
    return q


def create_app(retriever, video_root: str | None = None, thumbnails: dict[str, list[str]] | None = None,
               max_k: int = 100, max_query_chars: int = 500, default_k: int = 10,
               allowed_hosts: list[str] | None = None, title: str = "pig-lightning search") -> FastAPI:
    """The app for a loaded ``retriever``; ``video_root`` overrides the gallery's recorded one,
    ``thumbnails`` maps video ids to base64 JPEG frames, ``allowed_hosts`` (when given) refuses
    requests whose Host header is not one of them (a DNS-rebinding guard for a local server)."""
    if max_k < 1 or max_query_chars < 1:
        raise ValueError(f"max_k and max_query_chars must be >= 1, got {max_k} and {max_query_chars}")
    gallery = retriever.gallery
    files = VideoFiles(gallery, video_root)
    thumbnails = thumbnails or {}
    lock = threading.Lock()  # one search at a time: the tokenizer is not thread-safe, torch uses every core anyway
    default_k = min(default_k, max_k)
    page = render_page(title, len(gallery.video_ids), max_k, max_query_chars, files.why_unavailable(), default_k)
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, "bad request parameters")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(VideoUnavailable)
    async def video_unavailable(request: Request, exc: VideoUnavailable) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error (the server log has the details)")

    if allowed_hosts:
        allowed = {h.lower() for h in allowed_hosts}

        @app.middleware("http")
        async def check_host(request: Request, call_next):
            host = request.headers.get("host", "").lower()
            name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
            if name not in allowed:
                return error(400, "unexpected Host header (start serve with --host to accept this name)")
            return await call_next(request)

    def result(rank: int, video_id: str, score: float) -> dict[str, Any]:
        start, end = files.clip(video_id)
        return {"rank": rank, "video_id": video_id, "score": score,
                "thumbnails": [f"data:image/jpeg;base64,{b64}" for b64 in thumbnails.get(video_id, [])],
                "video_url": f"/video/{quote(video_id, safe='')}" if files.available else None,
                "start": start, "end": end}

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/page.js")
    def script() -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/search")
    def search(q: str | None = None, k: str | None = None) -> JSONResponse:
        query, top = check_query(q, max_query_chars), parse_k(k, default_k, max_k)
        with lock:  # the search's time, not the time spent queued behind other clients
            started = time.perf_counter()
            try:
                hits = retriever.search([query], top)[0]
            except ValueError as exc:  # a query the model refuses
                raise BadRequest(str(exc)) from None
        took = (time.perf_counter() - started) * 1000
        body = {"query": query, "k": top,
                "results": [result(rank, video_id, score) for rank, (video_id, score) in enumerate(hits, start=1)]}
        return JSONResponse(body, headers={"Server-Timing": f"search;dur={took:.2f}"})

    @app.api_route("/video/{video_id:path}", methods=["GET", "HEAD"])
    def video(video_id: str) -> FileResponse:
        path = files.path(video_id)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "videos": len(gallery.video_ids), "playback": files.available,
                "thumbnails": bool(thumbnails), "tower": gallery.model.get("tower")}

    return app
