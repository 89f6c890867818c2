"""Helpers of the health tests: a runtime on real services, a webhook receiver, balance fakes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import select, update

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Ability, Channel, Log, Option, User, UserRole
from libs.common.db.seed import seed_first_start
from libs.common.events import ConfigChanged, RelayOutcome
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi.targets import build_registry
from tests.services.relay.stack import ROOT_TOKEN, SeedChannel, seed_channels

ROOT_EMAIL = "root@example.com"
WEBHOOK_SECRET = "webhook-secret-1"


async def eventually(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 10.0,
    what: str = "the condition",
) -> None:
    """Wait until `condition()` holds, polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Health:
    """A running process (health, and optionally relay) and the test's own view of it."""

    runtime: Runtime
    database: Database
    bus: Bus
    settings: Settings
    channels: dict[str, int]
    changes: list[ConfigChanged] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.http.port}/v1"

    @property
    def root_key(self) -> str:
        return "sk-" + ROOT_TOKEN

    async def channel(self, name_or_id: str | int) -> Channel:
        channel_id = self.channels[name_or_id] if isinstance(name_or_id, str) else name_or_id
        async with self.database.session() as session:
            row = await session.get(Channel, channel_id)
            assert row is not None
            return row

    async def status(self, name: str) -> int:
        return (await self.channel(name)).status

    async def abilities_enabled(self, name: str) -> set[bool]:
        async with self.database.session() as session:
            rows = await session.execute(
                select(Ability.enabled).where(Ability.channel_id == self.channels[name])
            )
            return {bool(enabled) for (enabled,) in rows}

    async def wait_status(self, name: str, status: int, timeout: float = 10.0) -> None:
        async def reached() -> bool:
            return await self.status(name) == status

        await eventually(reached, timeout=timeout, what=f"channel {name} to reach status {status}")

    async def logs(self, log_type: int) -> list[Log]:
        async with self.database.log_session() as session:
            rows = await session.execute(select(Log).where(Log.type == log_type).order_by(Log.id))
            return list(rows.scalars().all())

    async def set_options(self, **options: str) -> None:
        """Store options and tell every service, as the admin does."""
        async with self.database.session() as session:
            for key, value in options.items():
                await session.merge(Option(key=key, value=value))
        await self.bus.publish(ConfigChanged(entity="option", keys=list(options)))
        await self.bus.flush()

    async def outcome(self, name: str, **fields: Any) -> None:
        """Publish a relay outcome for channel `name`, as a relay would."""
        defaults: dict[str, Any] = {
            "request_id": f"req-{time.monotonic_ns()}",
            "channel_id": self.channels[name],
            "channel_type": 1,
            "model": "gpt-4o-mini",
            "success": False,
        }
        await self.bus.publish(RelayOutcome(**{**defaults, **fields}))

    def changed_channels(self) -> list[int]:
        return [i for event in self.changes if event.entity == "channel" for i in event.ids]


async def prepare_database(
    database: Database,
    config: Settings,
    channels: Iterable[SeedChannel],
    options: dict[str, str] | None,
) -> dict[str, int]:
    await upgrade(database)
    await seed_first_start(database, config)
    async with database.session() as session:
        await session.execute(
            update(User).where(User.role == UserRole.ROOT).values(email=ROOT_EMAIL)
        )
        for key, value in (options or {}).items():
            session.add(Option(key=key, value=value))
    return await seed_channels(database, channels)


def health_settings(sql_dsn: str, nats_url: str, namespace: str, **settings: Any) -> Settings:
    return Settings(
        port=0,
        host="127.0.0.1",
        sql_dsn=sql_dsn,
        nats_url=nats_url,
        nats_namespace=namespace,
        initial_root_token=ROOT_TOKEN,
        shutdown_grace_seconds=5,
        **settings,
    )


@asynccontextmanager
async def health_stack(
    *,
    sql_dsn: str,
    nats_url: str,
    namespace: str,
    channels: Iterable[SeedChannel],
    options: dict[str, str] | None = None,
    targets: tuple[str, ...] = ("health",),
    prepared: bool = False,
    **settings: Any,
) -> AsyncIterator[Health]:
    """`targets` (health by default) in this event loop, on a freshly migrated database."""
    config = health_settings(sql_dsn, nats_url, namespace, **settings)
    database = Database.from_settings(config)
    ids = {} if prepared else await prepare_database(database, config, channels, options)
    bus = await Bus.connect(nats_url, namespace=namespace)
    health = Health(
        Runtime(config, build_registry(), targets, version="test"), database, bus, config, ids
    )

    async def record(event: ConfigChanged) -> None:
        health.changes.append(event)

    await bus.subscribe(ConfigChanged, record)
    await health.runtime.start()
    try:
        yield health
    finally:
        await health.runtime.stop()
        await bus.close()
        await database.dispose()


# --- webhook receiver -------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = orjson.loads(self.body)
        return payload


class WebhookReceiver:
    """A small aiohttp server that records POSTs and checks their HMAC signature."""

    def __init__(self, secret: str = WEBHOOK_SECRET, *, fail_first: int = 0) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.pushes: list[dict[str, Any]] = []
        self._fail_first = fail_first
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def pusher_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp = headers.get("X-Oneapi-Timestamp", "")
        signature = headers.get("X-Oneapi-Signature", "")
        if not timestamp or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(signature, "sha256=" + expected.hexdigest())

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self._fail_first > 0:
            self._fail_first -= 1
            return web.Response(status=503)
        headers = dict(request.headers)
        valid = self.verify(headers, body)
        self.deliveries.append(Delivery(headers, body, valid))
        return web.Response(status=204 if valid else 401)

    async def _push(self, request: web.Request) -> web.Response:
        self.pushes.append(await request.json())
        return web.json_response({"success": True, "message": ""})

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/push", self._push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# --- balance APIs of the OpenAI-compatible providers ------------------------------------------


class BalanceFake:
    """The balance endpoints of DeepSeek, OpenRouter, SiliconFlow, CloseAI, API2GPT, AIGC2D and
    OpenAI-SB, in their documented shapes; each answers with the balance set for its path.

    Keys: ``Authorization: Bearer good`` only (anything else: 401 in OpenAI's envelope).
    """

    def __init__(self, key: str = "good") -> None:
        self.key = key
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.key}"

    def _route(self, payload: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            self.requests.append(request.path)
            if not self._authorized(request):
                error = {"message": "Invalid API key", "type": "invalid_request_error"}
                return web.json_response({"error": error}, status=401)
            return web.json_response(payload)

        return handler

    async def __aenter__(self) -> BalanceFake:
        app = web.Application()
        routes: dict[str, dict[str, Any]] = {
            # DeepSeek: GET /user/balance
            "/deepseek/user/balance": {
                "is_available": True,
                "balance_infos": [
                    {"currency": "CNY", "total_balance": "70.00"},
                    {"currency": "USD", "total_balance": "11.25"},
                ],
            },
            # OpenRouter: GET /api/v1/credits
            "/openrouter/api/v1/credits": {"data": {"total_credits": 20.5, "total_usage": 5.25}},
            # SiliconFlow: GET /v1/user/info
            "/siliconflow/v1/user/info": {
                "code": 20000,
                "message": "OK",
                "status": True,
                "data": {"balance": "0.88", "totalBalance": "42.5", "chargeBalance": "41.62"},
            },
            # CloseAI, AIGC2D: GET /dashboard/billing/credit_grants -> total_available
            "/closeai/dashboard/billing/credit_grants": {"total_available": 7.75},
            "/aigc2d/dashboard/billing/credit_grants": {"total_available": 3.5},
            # API2GPT: the same path -> total_remaining
            "/api2gpt/dashboard/billing/credit_grants": {"total_remaining": 9.0},
            # OpenAI-SB: GET /sb-api/user/status?api_key=... -> data.credit
            "/openaisb/sb-api/user/status": {"data": {"credit": "13.37"}},
        }
        for path, payload in routes.items():
            app.router.add_get(path, self._route(payload))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
