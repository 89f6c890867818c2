"""The web UI: the built single-page app (`services/admin/web/dist`), mounted at "/".

`/api` is mounted under a longer prefix, so no API path reaches this app. Here:

- a file of the build is sent as is: hashed assets under `/assets/` are cached for a year as
  immutable, anything else (index.html, favicon) is revalidated on every use (`no-cache`);
  a precompressed `.br` or `.gz` beside the file (written by the build) is sent when the
  browser accepts it;
- any other path is a page of the app (`/token`, `/user/reset?email=...`, `/oauth/github`):
  it answers index.html and the app routes in the browser. A page counts against
  `GLOBAL_WEB_RATE_LIMIT` per address per three minutes (One API's web limiter; assets, which
  the browser caches, do not count);
- a missing file (a path whose last segment has a dot, such as `/assets/index-0ld.js` from a
  tab opened before an upgrade) is a 404, never index.html, which a browser would try to run;
- without a build, a page answers 503 with how to build it;
- on a `NODE_TYPE=slave` node with `FRONTEND_BASE_URL`, pages redirect there (One API; a master
  ignores it). The redirect is a 302 where One API sends a 301, which browsers keep for good.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse

from libs.common.runtime.http import Receive, Scope, Send
from services.admin.deps import client_ip, global_web_rate_limit
from services.admin.errors import RateLimited
from services.admin.state import AdminState

logger = logging.getLogger(__name__)

DIST: Final = Path(__file__).resolve().parent / "web" / "dist"
"""Where `npm run build` (and the Dockerfile's web stage) puts the built app."""
ASSETS_PREFIX: Final = "/assets/"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
ENCODINGS: Final = (("br", ".br"), ("gzip", ".gz"))
SAFE_METHODS: Final = ("GET", "HEAD")

NOT_BUILT_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>oneapi: web UI not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
padding: 0 1rem; line-height: 1.5">
<h1>The web UI is not built</h1>
<p>The management API answers under <code>/api</code>; the pages need a build of
<code>services/admin/web</code> (Node.js 20.19 or later):</p>
<pre>make ui</pre>
<p>or by hand:</p>
<pre>cd services/admin/web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>then reload this page (no restart needed).</p>
</body></html>
"""

RATE_LIMITED_PAGE: Final = "Too many requests from this address; try again in a few minutes.\n"


class WebUi:
    """ASGI app serving the built UI; see the module's docstring for what answers what."""

    def __init__(self, state: AdminState, dist: Path = DIST) -> None:
        self._state = state
        self._dist = dist.resolve()
        settings = state.settings
        base = settings.frontend_base_url.strip().rstrip("/")
        if base and settings.node_type == "master":
            logger.warning("FRONTEND_BASE_URL is ignored on a master node")
            base = ""
        self._redirect_base = base
        if not base and not (self._dist / "index.html").is_file():
            logger.warning("the web UI is not built (%s missing): run `make ui`", self._dist)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        response = await self._answer(Request(scope, receive))
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> StarletteResponse:
        if request.method not in SAFE_METHODS:
            return PlainTextResponse(
                "Method Not Allowed\n", status_code=405, headers={"Allow": ", ".join(SAFE_METHODS)}
            )
        path = request.url.path
        if self._redirect_base:
            target = self._redirect_base + path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(target, status_code=302)
        file = self._file(path)
        if file is not None:
            cache = IMMUTABLE if path.startswith(ASSETS_PREFIX) else REVALIDATE
            return self._send_file(request, file, cache)
        if path.startswith(ASSETS_PREFIX) or "." in path.rsplit("/", 1)[-1]:
            return PlainTextResponse("Not Found\n", status_code=404)
        return await self._page(request)

    async def _page(self, request: Request) -> StarletteResponse:
        try:
            await global_web_rate_limit(self._state, client_ip(request, self._state))
        except RateLimited:
            return PlainTextResponse(
                RATE_LIMITED_PAGE, status_code=429, headers={"Retry-After": "60"}
            )
        index = self._dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT_PAGE, status_code=503, headers={"Retry-After": "10"})
        return self._send_file(request, index, REVALIDATE)

    def _file(self, path: str) -> Path | None:
        """The build's file at `path`, if there is one (never outside the build, never hidden)."""
        if path in ("", "/"):
            return None
        parts = [part for part in path.split("/") if part]
        if any(part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
            return None
        candidate = self._dist.joinpath(*parts)
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self._dist) or not resolved.is_file():
            return None
        return resolved

    @staticmethod
    def _send_file(request: Request, file: Path, cache: str) -> StarletteResponse:
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in (
            "application/javascript",
            "application/json",
            "image/svg+xml",
        ):
            media_type += "; charset=utf-8"
        headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
        accepted = request.headers.get("accept-encoding", "")
        for encoding, suffix in ENCODINGS:
            compressed = file.with_name(file.name + suffix)
            if _accepts(accepted, encoding) and compressed.is_file():
                headers["Content-Encoding"] = encoding
                headers["Vary"] = "Accept-Encoding"
                return FileResponse(compressed, media_type=media_type, headers=headers)
        if any(file.with_name(file.name + suffix).is_file() for _, suffix in ENCODINGS):
            headers["Vary"] = "Accept-Encoding"
        return FileResponse(file, media_type=media_type, headers=headers)


def _accepts(header: str, encoding: str) -> bool:
    """Whether an Accept-Encoding header accepts `encoding` (q=0 refuses it)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() != encoding:
            continue
        quality = params.strip().lower()
        return not (quality.startswith("q=") and _zero(quality[2:]))
    return False


def _zero(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False
