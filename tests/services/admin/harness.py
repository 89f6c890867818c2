"""The admin's `/api` in the test's event loop, on a real database, NATS and an in-process cache.

    async def test_something(admin: AdminHarness) -> None:
        alice = await admin.add_user("alice")                  # a common user, with access token
        response = await admin.client(alice).get("/api/user/self")
        assert_ok(response)

`admin.root` is the seeded root (given an access token); `admin.client()` is anonymous;
`admin.client(user)` authenticates with the user's access token. `admin.config_changes` holds
every `config.changed` published since the harness started.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from libs.common.bus import Bus
from libs.common.cache import Cache, InProcessCache
from libs.common.db import Base, Database, LogBase
from libs.common.db.models import User, UserRole
from libs.common.db.seed import hash_password, seed_first_start
from libs.common.events import ConfigChanged
from libs.common.settings import Settings
from services.admin.app import create_app
from services.admin.security import SessionCodec
from services.admin.state import AdminState

PASSWORD = "correct horse 42"
"""Every user the harness adds has this password."""


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class TestUser:
    id: int
    username: str
    role: int
    access_token: str
    password: str = PASSWORD


@dataclass
class AdminHarness:
    state: AdminState
    app: Any
    root: TestUser
    config_changes: list[ConfigChanged] = field(default_factory=list)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def database(self) -> Database:
        return self.state.database

    @property
    def bus(self) -> Bus:
        return self.state.bus

    def client(self, user: TestUser | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A client of the app, anonymous or authenticated by `user`'s access token."""
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = user.access_token
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://testserver",
            headers=headers,
            **kwargs,
        )
        self._clients.append(client)
        return client

    async def add_user(
        self,
        username: str | None = None,
        *,
        role: int = UserRole.COMMON,
        **columns: Any,
    ) -> TestUser:
        """A user row written directly, with `PASSWORD` and a fresh access token."""
        username = username or "u" + secrets.token_hex(4)
        access_token = secrets.token_hex(16)
        async with self.database.session() as session:
            user = User(
                username=username,
                password=password_hash(),
                display_name=username,
                role=role,
                access_token=access_token,
                aff_code=secrets.token_hex(4),
                **columns,
            )
            session.add(user)
            await session.flush()
            user_id = user.id
        return TestUser(user_id, username, role, access_token)

    async def wait_for_change(self, entity: str, timeout: float = 2.0) -> ConfigChanged:
        """The first `config.changed` for `entity` published from now on (or already seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for change in self.config_changes:
                if change.entity == entity:
                    return change
            await asyncio.sleep(0.01)
        raise AssertionError(f"no config.changed for {entity!r} within {timeout} s")


def assert_ok(response: httpx.Response) -> Any:
    """The `data` of a successful envelope; fails with the message otherwise."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body.get("message")
    return body.get("data")


def assert_refused(response: httpx.Response, *, status_code: int = 200, message: str = "") -> str:
    """The message of a refusal in One API's envelope (HTTP 200 unless said otherwise)."""
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert message in body["message"], body["message"]
    return str(body["message"])


async def reset_database(database: Database, settings: Settings) -> None:
    """Empty every table (faster than a new database per test) and seed root again."""
    async with database.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
    async with database.log_session() as session:
        for table in reversed(LogBase.metadata.sorted_tables):
            await session.execute(delete(table))
    await seed_first_start(database, settings)


@asynccontextmanager
async def admin_harness(
    database: Database,
    nats_url: str,
    namespace: str,
    *,
    cache: Cache | None = None,
    **settings: Any,
) -> AsyncIterator[AdminHarness]:
    """The app over `database` (migrated, emptied, seeded) with its own NATS namespace.

    `cache` (the caller's to close) replaces the in-process one: two harnesses given caches on
    the same Redis behave as two admin replicas.
    """
    config = Settings(
        _env_file=None,
        nats_url=nats_url,
        nats_namespace=namespace,
        session_secret="test-session-secret",
        **settings,
    )
    await reset_database(database, config)
    root_token = secrets.token_hex(16)
    async with database.session() as session:
        await session.execute(
            update(User).where(User.username == "root").values(access_token=root_token)
        )
        root_id = await session.scalar(select(User.id).where(User.username == "root"))
    assert root_id is not None
    bus = await Bus.connect(nats_url, namespace=namespace)
    own_cache = cache is None
    cache = InProcessCache() if cache is None else cache
    state = AdminState(
        settings=config,
        database=database,
        bus=bus,
        cache=cache,
        sessions=SessionCodec(config.session_secret),
        version="test",
    )
    harness = AdminHarness(
        state=state,
        app=create_app(state),
        root=TestUser(root_id, "root", UserRole.ROOT, root_token),
    )
    await bus.subscribe(ConfigChanged, _collect(harness.config_changes))
    try:
        yield harness
    finally:
        for client in harness._clients:
            await client.aclose()
        await bus.close()
        if own_cache:
            await cache.close()


def _collect(into: list[ConfigChanged]) -> Any:
    async def on_change(event: ConfigChanged) -> None:
        into.append(event)

    return on_change
