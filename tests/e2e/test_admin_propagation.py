"""Disabling a channel or a token through `/api` reaches a relay in another process within 1 s.

An admin process and a relay process share PostgreSQL and NATS (as a split deployment does),
with CRYPTO_SECRET set on both: the channels the admin creates are stored encrypted, and the
relay decrypts their keys (each fake upstream accepts only its own key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from libs.common.crypto import SEALED_PREFIX
from libs.common.db import Database
from libs.common.db.models import Channel, Token
from libs.common.settings import Settings
from tests.fakes import FakeUpstream
from tests.harness.process import OneapiProcess

pytestmark = pytest.mark.slow

ROOT_ACCESS_TOKEN = "propagation-root-access-token-01"
ROOT_TOKEN = "p" * 48
MODEL = "propagation-model"
PROPAGATION_LIMIT_SECONDS = 1.0
POLL_SECONDS = 0.02


@dataclass
class Deployment:
    admin: httpx.AsyncClient
    relay: httpx.AsyncClient
    database: Database

    async def chat(self) -> httpx.Response:
        return await self.relay.post(
            "/v1/chat/completions",
            json={"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer sk-{ROOT_TOKEN}"},
        )

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.admin.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True, body
        return body.get("data")


@pytest.fixture
async def deployment(
    postgres_url: str, nats_url: str, nats_namespace: str, tmp_path: Path
) -> AsyncIterator[Deployment]:
    env = {
        "SQL_DSN": postgres_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": nats_namespace,
        "CRYPTO_SECRET": "propagation-crypto-secret-0123456789",
        "SESSION_SECRET": "propagation-session-secret",
        "INITIAL_ROOT_ACCESS_TOKEN": ROOT_ACCESS_TOKEN,
        "INITIAL_ROOT_TOKEN": ROOT_TOKEN,
        "GLOBAL_API_RATE_LIMIT": "0",
        # Only config.changed can make a relay see a change this fast.
        "SYNC_FREQUENCY": "600",
    }
    admin = OneapiProcess(["run", "--target", "admin"], data_dir=tmp_path / "admin", env=env)
    relay = OneapiProcess(["run", "--target", "relay"], data_dir=tmp_path / "relay", env=env)
    database = Database.from_settings(Settings(_env_file=None, sql_dsn=postgres_url))
    with admin, relay:
        await asyncio.to_thread(admin.wait_ready)
        await asyncio.to_thread(relay.wait_ready)
        async with (
            httpx.AsyncClient(
                base_url=admin.url, headers={"Authorization": ROOT_ACCESS_TOKEN}, timeout=10
            ) as admin_client,
            httpx.AsyncClient(base_url=relay.url, timeout=10) as relay_client,
        ):
            try:
                yield Deployment(admin_client, relay_client, database)
            finally:
                await database.dispose()


async def seconds_until(condition: Any, *, limit: float, what: str) -> float:
    """Seconds from now until `await condition()` holds; fails past `limit` seconds."""
    began = time.monotonic()
    while not await condition():
        if time.monotonic() - began > limit:
            raise AssertionError(f"{what} did not happen within {limit} s")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - began


async def test_a_channel_disabled_through_the_api_stops_getting_traffic_within_a_second(
    deployment: Deployment,
) -> None:
    async with (
        FakeUpstream("openai", keys=["sk-preferred"]) as preferred,
        FakeUpstream("openai", keys=["sk-fallback"]) as fallback,
    ):
        [first] = await deployment.api(
            "POST",
            "/api/channel/",
            json={
                "type": 1,
                "name": "preferred",
                "key": "sk-preferred",
                "base_url": preferred.url,
                "models": MODEL,
                "group": "default",
                "priority": 10,
            },
        )
        await deployment.api(
            "POST",
            "/api/channel/",
            json={
                "type": 1,
                "name": "fallback",
                "key": "sk-fallback",
                "base_url": fallback.url,
                "models": MODEL,
                "group": "default",
                "priority": 0,
            },
        )
        async with deployment.database.session() as session:
            keys = (await session.execute(select(Channel.key))).scalars().all()
        assert all(key.startswith(SEALED_PREFIX) for key in keys)

        async def served_by_preferred() -> bool:
            before = len(preferred.requests)
            return (await deployment.chat()).status_code == 200 and len(preferred.requests) > before

        # the relay learns about new channels the same way; the higher priority wins
        await seconds_until(served_by_preferred, limit=5, what="the relay using the channel")

        await deployment.api("PUT", "/api/channel/", json={"id": first["id"], "status": 2})

        async def served_by_fallback() -> bool:
            before = len(fallback.requests)
            return (await deployment.chat()).status_code == 200 and len(fallback.requests) > before

        elapsed = await seconds_until(
            served_by_fallback, limit=PROPAGATION_LIMIT_SECONDS, what="the relay leaving it"
        )
        assert elapsed < PROPAGATION_LIMIT_SECONDS
        routed_before = len(preferred.requests)
        for _ in range(5):
            assert (await deployment.chat()).status_code == 200
        assert len(preferred.requests) == routed_before


async def test_a_token_disabled_through_the_api_is_refused_within_a_second(
    deployment: Deployment,
) -> None:
    async with FakeUpstream("openai", keys=["sk-upstream"]) as upstream:
        await deployment.api(
            "POST",
            "/api/channel/",
            json={
                "type": 1,
                "name": "only",
                "key": "sk-upstream",
                "base_url": upstream.url,
                "models": MODEL,
            },
        )

        async def admitted() -> bool:
            return (await deployment.chat()).status_code == 200

        await seconds_until(admitted, limit=5, what="the relay admitting the token")
        async with deployment.database.session() as session:
            token_id = await session.scalar(select(Token.id).where(Token.key == ROOT_TOKEN))
        assert token_id is not None

        await deployment.api(
            "PUT", "/api/token/", params={"status_only": "true"}, json={"id": token_id, "status": 2}
        )

        async def refused() -> bool:
            return (await deployment.chat()).status_code == 401

        elapsed = await seconds_until(
            refused, limit=PROPAGATION_LIMIT_SECONDS, what="the relay refusing the token"
        )
        assert elapsed < PROPAGATION_LIMIT_SECONDS
