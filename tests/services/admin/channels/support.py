"""Helpers of the channel tests: request bodies, the rows a test compares, a health service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select

from libs.common.db import Database
from libs.common.db.models import Ability, Channel
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi.targets import build_registry
from tests.services.admin.harness import AdminHarness

SECRET = "crypto-secret-for-the-channel-tests-0123456789"


def channel_body(**fields: Any) -> dict[str, Any]:
    """What One API's web UI sends to create an OpenAI channel, with `fields` on top."""
    body: dict[str, Any] = {
        "type": 1,
        "key": "sk-upstream-key-0001",
        "name": "primary",
        "base_url": "",
        "other": "",
        "models": "gpt-4o-mini,gpt-4o",
        "group": "default",
        "model_mapping": "",
        "priority": 0,
        "weight": 0,
        "config": "{}",
        "system_prompt": "",
    }
    body.update(fields)
    return body


AbilityRow = tuple[str, str, int, bool, int]


async def abilities(database: Database, *channel_ids: int) -> set[AbilityRow]:
    """Every ability row (group, model, channel, enabled, priority), of `channel_ids` if given."""
    query = select(
        Ability.group, Ability.model, Ability.channel_id, Ability.enabled, Ability.priority
    )
    if channel_ids:
        query = query.where(Ability.channel_id.in_(channel_ids))
    async with database.session() as session:
        rows = await session.execute(query)
        return {(g, m, int(c), bool(e), int(p)) for g, m, c, e, p in rows}


async def channel_row(database: Database, channel_id: int) -> Channel | None:
    async with database.session() as session:
        return await session.get(Channel, channel_id)


@asynccontextmanager
async def health_service(
    database_url: str, nats_url: str, namespace: str, **settings: Any
) -> AsyncIterator[Runtime]:
    """The health target, in this event loop, on the admin's database and NATS namespace."""
    config = Settings(
        _env_file=None,
        port=0,
        host="127.0.0.1",
        sql_dsn=database_url,
        nats_url=nats_url,
        nats_namespace=namespace,
        shutdown_grace_seconds=1,
        **settings,
    )
    runtime = Runtime(config, build_registry(), ["health"], version="test")
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def announced(admin: AdminHarness, ids: list[int], timeout: float = 2.0) -> None:
    """Wait for `config.changed` of exactly these channels (in any order)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for change in admin.config_changes:
            if change.entity == "channel" and sorted(change.ids) == sorted(ids):
                return
        await asyncio.sleep(0.01)
    seen = [(c.entity, c.ids) for c in admin.config_changes]
    raise AssertionError(f"no config.changed for channels {ids} within {timeout} s: {seen}")
