"""The process's HTTP front: one port, path-prefix mounts, and the runtime's own endpoints.

`/livez`, `/readyz` and `/metrics` belong to the runtime, whatever targets the process runs.
Modules mount ASGI applications under path prefixes (`/v1`, `/api`, `/`); a mounted app sees the
full, unstripped path. The longest matching prefix wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import orjson
import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Router:
    """Dispatches each request to the app mounted under the longest matching path prefix."""

    def __init__(
        self, metrics: CollectorRegistry, readiness: Callable[[], tuple[bool, list[str]]]
    ) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._mounts: list[tuple[str, ASGIApp]] = []

    def mount(self, prefix: str, app: ASGIApp) -> None:
        prefix = "/" + prefix.strip("/")
        if any(existing == prefix for existing, _ in self._mounts):
            raise ValueError(f"path prefix {prefix} is mounted twice")
        self._mounts.append((prefix, app))
        self._mounts.sort(key=lambda mount: len(mount[0]), reverse=True)

    def _app_for(self, path: str) -> ASGIApp | None:
        for prefix, app in self._mounts:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return app
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        path: str = scope["path"]
        if path == "/livez":
            await _respond(send, 200, b"ok\n", b"text/plain; charset=utf-8")
            return
        if path == "/readyz":
            ready, waiting = self._readiness()
            body = b"ready\n" if ready else ("not ready: " + ", ".join(waiting) + "\n").encode()
            await _respond(send, 200 if ready else 503, body, b"text/plain; charset=utf-8")
            return
        if path == "/metrics":
            await _respond(send, 200, generate_latest(self._metrics), CONTENT_TYPE_LATEST.encode())
            return
        app = self._app_for(path)
        if app is None:
            if scope["type"] == "http":
                body = orjson.dumps({"success": False, "message": f"{path} is not served here"})
                await _respond(send, 404, body, b"application/json")
            return
        await app(scope, receive, send)


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the runtime owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """Serves the router on one port; stops accepting, then drains, on `stop`."""

    def __init__(self, router: Router, *, host: str, port: int, grace_seconds: int) -> None:
        self._config = uvicorn.Config(
            router,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the relay reads X-Forwarded-For only from TRUSTED_PROXIES
            timeout_graceful_shutdown=grace_seconds,
            ws="none",
        )
        self._server = _Server(self._config)
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._config.host, self._config.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"cannot listen on {self._config.host}:{self._config.port}: {exc.strerror}"
            ) from None
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        logger.info("serving HTTP on %s:%d", self._config.host, self.port)

    async def stop(self) -> None:
        """Stop accepting connections and wait for in-flight requests, up to the grace period."""
        if self._task is None:
            return
        self._server.should_exit = True
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def force_stop(self) -> None:
        self._server.force_exit = True
