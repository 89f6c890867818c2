"""`services/admin/ui.py`: the built web UI at "/", on a fake build in a temporary folder."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prometheus_client import CollectorRegistry

from libs.common.cache import InProcessCache
from libs.common.runtime.http import Receive, Router, Scope, Send
from libs.common.settings import Settings
from services.admin.security import SessionCodec
from services.admin.state import AdminState
from services.admin.ui import DIST, IMMUTABLE, REVALIDATE, WebUi

INDEX = b"<!doctype html><html><body><div id=root></div><script src=/assets/index-abc123.js>"
SCRIPT = b"console.log('the app');" * 100


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (root / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(SCRIPT))
    (root / "assets" / "index-abc123.js.br").write_bytes(b"brotli bytes")
    (root / "assets" / "app-def456.css").write_text("body{}")
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "outside.txt").write_text("not served")
    return root


def make_state(**settings: Any) -> AdminState:
    return AdminState(
        settings=Settings(_env_file=None, session_secret="s", **settings),
        database=cast(Any, None),  # the UI never touches the database, the bus
        bus=cast(Any, None),
        cache=InProcessCache(),
        sessions=SessionCodec("s"),
        version="test",
    )


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test")


@pytest.fixture
async def ui(dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(WebUi(make_state(), dist)) as client:
        yield client


async def raw_get(app: WebUi, path: str) -> tuple[int, bytes]:
    """GET with exactly this `path` in the ASGI scope (httpx would normalise it)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1234),
        "server": ("ui.test", 80),
        "scheme": "http",
        "http_version": "1.1",
    }
    await app(scope, cast(Receive, receive), cast(Send, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def test_the_index_is_served_at_the_root_and_revalidated(ui: httpx.AsyncClient) -> None:
    response = await ui.get("/")
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == REVALIDATE
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/token",
        "/dashboard",
        "/user/reset?email=a%40b.c&token=abc",
        "/oauth/github?code=x&state=y",
        "/setting/system",
        "/deep/unknown/page",
    ],
)
async def test_every_page_of_the_app_answers_the_index(ui: httpx.AsyncClient, path: str) -> None:
    response = await ui.get(path)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["cache-control"] == REVALIDATE


async def test_hashed_assets_are_immutable_and_other_files_revalidated(
    ui: httpx.AsyncClient,
) -> None:
    script = await ui.get("/assets/index-abc123.js", headers={"accept-encoding": "identity"})
    assert script.status_code == 200
    assert script.content == SCRIPT
    assert script.headers["cache-control"] == IMMUTABLE
    assert "javascript" in script.headers["content-type"]
    assert "content-encoding" not in script.headers
    assert script.headers["vary"] == "Accept-Encoding"
    css = await ui.get("/assets/app-def456.css")
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == IMMUTABLE
    icon = await ui.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.headers["cache-control"] == REVALIDATE


async def test_a_precompressed_file_is_sent_when_the_browser_accepts_it(
    ui: httpx.AsyncClient,
) -> None:
    brotli = await ui.get("/assets/index-abc123.js", headers={"accept-encoding": "gzip, br"})
    assert brotli.headers["content-encoding"] == "br"
    assert brotli.headers["vary"] == "Accept-Encoding"
    assert "javascript" in brotli.headers["content-type"]
    # httpx decodes gzip itself: the body is the original script.
    gzipped = await ui.get("/assets/index-abc123.js", headers={"accept-encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == SCRIPT
    refused = await ui.get("/assets/index-abc123.js", headers={"accept-encoding": "br;q=0, gzip"})
    assert refused.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize(
    "path", ["/assets/index-0ld.js", "/assets/missing", "/robots.txt", "/favicon.ico"]
)
async def test_a_missing_file_is_a_404_never_the_index(ui: httpx.AsyncClient, path: str) -> None:
    response = await ui.get(path)
    assert response.status_code == 404
    assert response.content != INDEX


@pytest.mark.parametrize(
    "path",
    [
        "/../outside.txt",
        "/assets/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/.env",
        "/assets/..\\..\\outside.txt",
        "/index.html\x00.js",
    ],
)
async def test_nothing_outside_the_build_or_hidden_is_served(dist: Path, path: str) -> None:
    status, body = await raw_get(WebUi(make_state(), dist), path)
    assert b"not served" not in body
    assert b"SECRET" not in body
    assert status in (200, 404)
    if status == 200:
        assert body == INDEX


async def test_head_has_no_body_and_writes_are_refused(ui: httpx.AsyncClient) -> None:
    head = await ui.head("/token")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(INDEX)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = await ui.request(method, "/token")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"


async def test_without_a_build_pages_say_how_to_build_it(tmp_path: Path) -> None:
    async with client_for(WebUi(make_state(), tmp_path / "no-dist")) as client:
        page = await client.get("/")
        assert page.status_code == 503
        assert "make ui" in page.text
        assert "npm ci" in page.text
        assert (await client.get("/token")).status_code == 503
        assert (await client.get("/assets/index-abc123.js")).status_code == 404


async def test_pages_count_against_the_web_rate_limit_and_assets_do_not(dist: Path) -> None:
    async with client_for(WebUi(make_state(global_web_rate_limit=3), dist)) as client:
        for _ in range(5):
            assert (await client.get("/assets/index-abc123.js")).status_code == 200
        for path in ("/", "/token", "/log"):
            assert (await client.get(path)).status_code == 200
        limited = await client.get("/dashboard")
        assert limited.status_code == 429
        assert limited.headers["retry-after"]
        assert (await client.get("/favicon.svg")).status_code == 200


async def test_a_zero_web_rate_limit_turns_it_off(dist: Path) -> None:
    async with client_for(WebUi(make_state(global_web_rate_limit=0), dist)) as client:
        for _ in range(10):
            assert (await client.get("/token")).status_code == 200


async def test_a_slave_with_frontend_base_url_redirects_pages_there(dist: Path) -> None:
    state = make_state(node_type="slave", frontend_base_url="https://ui.example.com/")
    async with client_for(WebUi(state, dist)) as client:
        response = await client.get("/user/reset?email=a%40b.c&token=t")
        assert response.status_code == 302
        assert (
            response.headers["location"]
            == "https://ui.example.com/user/reset?email=a%40b.c&token=t"
        )


async def test_a_master_ignores_frontend_base_url(dist: Path) -> None:
    state = make_state(node_type="master", frontend_base_url="https://ui.example.com")
    async with client_for(WebUi(state, dist)) as client:
        assert (await client.get("/token")).content == INDEX


async def test_behind_the_router_api_and_relay_paths_keep_their_apps(dist: Path) -> None:
    """As `oneapi run` mounts them: /api (admin), /v1 and /dashboard/billing (relay), "/" (UI)."""

    def named(name: str) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            body = name.encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        return app

    router = Router(CollectorRegistry(), lambda: (True, []))
    router.mount("/api", named("api"))
    router.mount("/v1", named("relay"))
    router.mount("/dashboard/billing", named("relay"))
    router.mount("/", WebUi(make_state(), dist))
    async with client_for(router) as client:
        assert (await client.get("/api/status")).text == "api"
        assert (await client.get("/v1/models")).text == "relay"
        assert (await client.get("/dashboard/billing/subscription")).text == "relay"
        assert (await client.get("/dashboard")).content == INDEX
        assert (await client.get("/token")).content == INDEX


@pytest.fixture
def real_dist() -> Path:
    if not (DIST / "index.html").is_file():
        pytest.skip("the web UI is not built (make ui)")
    return DIST


async def test_the_real_build_references_only_its_own_assets(real_dist: Path) -> None:
    """Every script and stylesheet of the built index is a hashed asset served from here."""
    index = (real_dist / "index.html").read_text()
    assert "http://" not in index
    assert "https://" not in index
    async with client_for(WebUi(make_state(), real_dist)) as client:
        for asset in sorted((real_dist / "assets").iterdir()):
            if asset.suffix in (".js", ".css"):
                response = await client.get(f"/assets/{asset.name}")
                assert response.status_code == 200
                assert response.headers["cache-control"] == IMMUTABLE
