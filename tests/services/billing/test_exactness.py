"""Every unit charged once: duplicates, re-publishes and disorder change nothing."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.models import Token
from libs.common.events import QuotaUpdated
from tests.services.billing.support import (
    assert_exact,
    billing_runtime,
    migrated,
    publish_all,
    random_traffic,
    seed_accounts,
    wait_drained,
)


@pytest.fixture
async def bus(nats_url: str, nats_namespace: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, namespace=nats_namespace)
    await bus.ensure_streams()
    yield bus
    await bus.close()


async def test_ten_thousand_events_with_duplicates_and_disorder_are_charged_exactly(
    database_url: str, nats_url: str, nats_namespace: str, bus: Bus
) -> None:
    rng = random.Random(4)
    database: Database = await migrated(database_url)
    try:
        # 50 tokens of 10 users; every fifth token unlimited, a few limited ones run dry.
        accounts = await seed_accounts(
            database,
            users=10,
            tokens=50,
            token_quota=lambda i: 20_000 if i % 7 == 1 else 10**8,
            unlimited=lambda i: i % 5 == 0,
        )
        events = random_traffic(accounts, 10_000, rng)
        # Out of order: shuffle within windows of 300 (what retries and spills produce).
        ordered = []
        for start in range(0, len(events), 300):
            window = events[start : start + 300]
            rng.shuffle(window)
            ordered.extend(window)
        # 5% twice: half with the same message id (JetStream's window drops them), half
        # re-published under another message id (only billing's request ids can catch them).
        again = rng.sample(ordered, 500)
        same_id = again[:250]
        other_id = again[250:]
        updates: list[QuotaUpdated] = []

        async def on_update(event: QuotaUpdated) -> None:
            updates.append(event)

        await bus.subscribe(QuotaUpdated, on_update)
        async with billing_runtime(
            sql_dsn=database_url, nats_url=nats_url, namespace=nats_namespace
        ):
            await publish_all(bus, ordered[:5000])
            await publish_all(bus, same_id)
            await publish_all(bus, ordered[5000:])
            await publish_all(
                bus, other_id, msg_ids=[f"again-{event.request_id}" for event in other_id]
            )
            await wait_drained(bus, timeout=90)

        await assert_exact(database, accounts, ordered + again)
        exhausted = [t for t, (_, q, unl) in accounts.tokens.items() if not unl and q == 20_000]
        assert exhausted  # the traffic did run some limited tokens dry
        # QuotaUpdated named every request and ends with the committed balances.
        await bus.flush()
        settled = {rid for update in updates for rid in update.request_ids}
        assert settled == {event.request_id for event in events}
        last_used: dict[int, int] = {}
        for update in updates:
            for token in update.tokens:
                last_used[token.id] = max(last_used.get(token.id, 0), token.used_quota)
        async with database.session() as session:
            rows = (await session.execute(select(Token.id, Token.used_quota))).all()
        assert last_used == {tid: used for tid, used in rows if used > 0}
    finally:
        await database.dispose()
