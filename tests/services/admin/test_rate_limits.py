"""One API's limits per client address: GLOBAL_API_RATE_LIMIT on every `/api` route, and the
critical limiter (20 per 20 minutes) on login, registration, password reset and verification.

Counters live in the cache, so admin replicas sharing Redis share them. The database plays no
part: these tests run on SQLite only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from libs.common.cache import cache_from_settings
from services.admin.app import create_app
from tests.services.admin.conftest import MigratedDatabases
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

CRITICAL_LIMIT = 20
PROXY = "10.0.0.5"


@pytest.fixture
def admin_database_url(migrated_databases: MigratedDatabases) -> str:
    return migrated_databases.url("sqlite", "")


@asynccontextmanager
async def client_at(
    app: Any, address: str, forwarded_for: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connection comes from `address`, optionally through a proxy header."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


async def served(client: httpx.AsyncClient, times: int, path: str = "/api/notice") -> None:
    for attempt in range(times):
        response = await client.get(path)
        assert response.status_code == 200, f"request {attempt + 1}: {response.text}"


async def refused(client: httpx.AsyncClient, path: str = "/api/notice") -> None:
    assert_refused(await client.get(path), status_code=429, message="请求过于频繁")


# --- GLOBAL_API_RATE_LIMIT --------------------------------------------------------------------


async def test_each_address_has_its_own_api_counter(admin: AdminHarness) -> None:
    admin.state.settings.global_api_rate_limit = 3
    async with (
        client_at(admin.app, "203.0.113.1") as first,
        client_at(admin.app, "203.0.113.2") as second,
    ):
        await served(first, 3)
        await refused(first)
        await refused(first, "/api/status")  # one counter for every /api route
        await served(second, 3)
        await refused(second)


async def test_zero_turns_the_api_limit_off(admin: AdminHarness) -> None:
    admin.state.settings.global_api_rate_limit = 0
    async with client_at(admin.app, "203.0.113.1") as client:
        await served(client, 181)  # One API's default allows 180 per three minutes


async def test_forwarded_for_is_believed_only_from_trusted_proxies(admin: AdminHarness) -> None:
    admin.state.settings.global_api_rate_limit = 2

    # No TRUSTED_PROXIES: the header is the client's say-so, and the peer is counted.
    async with client_at(admin.app, PROXY, "198.51.100.1") as one:
        await served(one, 1)
    async with client_at(admin.app, PROXY, "198.51.100.2") as other:
        await served(other, 1)
        await refused(other)

    admin.state.settings.trusted_proxies = ["10.0.0.0/8"]
    async with (
        client_at(admin.app, "10.0.0.6", "198.51.100.1") as alice,
        client_at(admin.app, "10.0.0.6", "198.51.100.2") as bob,
        # What a client wrote itself comes first; the proxy appends the address it saw.
        client_at(admin.app, "10.0.0.6", "198.51.100.2, 198.51.100.1") as alice_pretending,
        # A peer that is no trusted proxy is counted as itself, whatever it claims.
        client_at(admin.app, "192.0.2.9", "198.51.100.3") as direct,
    ):
        await served(alice, 2)
        await refused(alice)
        await refused(alice_pretending)
        await served(bob, 2)
        await served(direct, 2)
        await refused(direct)
        async with client_at(admin.app, "192.0.2.9", "198.51.100.4") as direct_again:
            await refused(direct_again)


async def test_admin_replicas_sharing_redis_share_one_counter(
    admin: AdminHarness, redis_url: str
) -> None:
    admin.state.settings.global_api_rate_limit = 3
    settings = admin.state.settings.model_copy(update={"redis_conn_string": redis_url})
    first_cache, second_cache = cache_from_settings(settings), cache_from_settings(settings)
    first_app = create_app(dataclasses.replace(admin.state, cache=first_cache))
    second_app = create_app(dataclasses.replace(admin.state, cache=second_cache))
    try:
        async with (
            client_at(first_app, "203.0.113.1") as on_first,
            client_at(second_app, "203.0.113.1") as on_second,
            client_at(second_app, "203.0.113.2") as someone_else,
        ):
            await served(on_first, 2)
            await served(on_second, 1)
            await refused(on_second)
            await refused(on_first)
            await served(someone_else, 3)
    finally:
        await first_cache.close()
        await second_cache.close()


# --- the critical limiter ---------------------------------------------------------------------

CRITICAL_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/user/login", {"json": {"username": "root", "password": "wrong"}}),
    ("POST", "/api/user/register", {"json": {}}),
    ("GET", "/api/verification", {"params": {"email": "someone@example.com"}}),
    ("GET", "/api/reset_password", {"params": {"email": "someone@example.com"}}),
    ("POST", "/api/user/reset", {"json": {"email": "someone@example.com", "token": "x"}}),
]


async def call(client: httpx.AsyncClient, route: tuple[str, str, dict[str, Any]]) -> httpx.Response:
    method, path, arguments = route
    return await client.request(method, path, **arguments)


@pytest.mark.parametrize("route", CRITICAL_ROUTES, ids=[path for _, path, _ in CRITICAL_ROUTES])
async def test_a_critical_route_serves_twenty_calls_per_address(
    admin: AdminHarness, route: tuple[str, str, dict[str, Any]]
) -> None:
    async with (
        client_at(admin.app, "203.0.113.1") as client,
        client_at(admin.app, "203.0.113.2") as neighbour,
    ):
        for attempt in range(CRITICAL_LIMIT):
            response = await call(client, route)
            assert response.status_code == 200, f"call {attempt + 1}: {response.text}"
        assert_refused(await call(client, route), status_code=429)
        assert_ok(await client.get("/api/status"))  # the other routes are not critical
        assert (await call(neighbour, route)).status_code == 200


async def test_the_critical_routes_share_one_counter_and_stop_a_password_guesser(
    admin: AdminHarness,
) -> None:
    async with client_at(admin.app, "203.0.113.1") as client:
        for attempt in range(CRITICAL_LIMIT):
            response = await call(client, CRITICAL_ROUTES[attempt % len(CRITICAL_ROUTES)])
            assert response.status_code == 200, f"call {attempt + 1}: {response.text}"
        right_password = {"username": admin.root.username, "password": "123456"}
        assert_refused(await client.post("/api/user/login", json=right_password), status_code=429)
