"""`/api/user/dashboard`: read from `log_daily_usage`, which billing keeps equal to the logs."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from libs.common.bus import Bus
from libs.common.db import Database, PoolOptions
from libs.common.db.migrations import upgrade
from libs.common.db.models import Channel, Log, LogDailyUsage, Option, Token, User
from libs.common.events import UsageEvent
from services.billing import consumer as consumer_module
from services.billing.consumer import BillingConsumer, OptionsHolder
from services.billing.mail import Reminders
from services.billing.metrics import BillingMetrics
from tests.services.admin.harness import AdminHarness, admin_harness, assert_ok
from tests.services.admin.harness import TestUser as Account
from tests.services.billing.support import publish_all, usage, wait_drained, wait_for

DAY = 86_400
DASHBOARD_FIELDS = {"Day", "ModelName", "RequestCount", "Quota", "PromptTokens", "CompletionTokens"}


def date_of(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


async def test_the_dashboard_shows_the_callers_last_seven_days_by_day_and_model(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    bob = await admin.add_user("bob")
    today = int(time.time()) // DAY

    def row(user: Account, day: int, model: str, requests: int) -> LogDailyUsage:
        return LogDailyUsage(
            user_id=user.id,
            day=day,
            model_name=model,
            request_count=requests,
            quota=1000 * requests,
            prompt_tokens=10 * requests,
            completion_tokens=requests,
        )

    async with admin.database.log_session() as session:
        session.add_all(
            [
                row(alice, today, "gpt-4o", 3),
                row(alice, today, "claude-3-haiku", 1),
                row(alice, today - 6, "gpt-4o", 2),
                row(alice, today - 7, "gpt-4o", 50),  # eight days ago: out of the window
                row(bob, today, "gpt-4o", 9),
            ]
        )

    usage_rows = assert_ok(await admin.client(alice).get("/api/user/dashboard"))

    assert usage_rows == [
        {
            "Day": date_of(today - 6),
            "ModelName": "gpt-4o",
            "RequestCount": 2,
            "Quota": 2000,
            "PromptTokens": 20,
            "CompletionTokens": 2,
        },
        {
            "Day": date_of(today),
            "ModelName": "claude-3-haiku",
            "RequestCount": 1,
            "Quota": 1000,
            "PromptTokens": 10,
            "CompletionTokens": 1,
        },
        {
            "Day": date_of(today),
            "ModelName": "gpt-4o",
            "RequestCount": 3,
            "Quota": 3000,
            "PromptTokens": 30,
            "CompletionTokens": 3,
        },
    ]
    assert assert_ok(await admin.client(admin.root).get("/api/user/dashboard")) == []


async def test_the_dashboard_covers_the_days_asked_for(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    today = int(time.time()) // DAY
    async with admin.database.log_session() as session:
        session.add_all(
            LogDailyUsage(
                user_id=alice.id,
                day=today - back,
                model_name="gpt-4o",
                request_count=back + 1,
                quota=100 * (back + 1),
                prompt_tokens=back,
                completion_tokens=1,
            )
            for back in (0, 1, 6, 7, 29, 30, 89, 90, 200)
        )
    client = admin.client(alice)

    async def days_back(**params: int) -> list[int]:
        rows = assert_ok(await client.get("/api/user/dashboard", params=params))
        assert all(set(row) == DASHBOARD_FIELDS for row in rows)
        return [(dt.date.fromisoformat(row["Day"]) - dt.date(1970, 1, 1)).days for row in rows]

    assert await days_back() == [today - 6, today - 1, today]  # One API's seven days
    assert await days_back(days=7) == [today - 6, today - 1, today]
    assert await days_back(days=1) == [today]
    assert await days_back(days=30) == [today - b for b in (29, 7, 6, 1, 0)]
    assert await days_back(days=90) == [today - b for b in (89, 30, 29, 7, 6, 1, 0)]
    rows = assert_ok(await client.get("/api/user/dashboard", params={"days": 2}))
    assert rows[0] == {
        "Day": date_of(today - 1),
        "ModelName": "gpt-4o",
        "RequestCount": 2,
        "Quota": 200,
        "PromptTokens": 1,
        "CompletionTokens": 1,
    }


# --- billing writes the aggregate -------------------------------------------------------------


@asynccontextmanager
async def billing(database: Database, bus: Bus) -> AsyncIterator[BillingMetrics]:
    """Billing's consumer draining the usage stream of `bus`'s namespace into `database`."""
    await bus.ensure_streams()
    metrics = BillingMetrics(CollectorRegistry())
    options = OptionsHolder(database)
    await options.reload()
    consumer = BillingConsumer(
        database,
        bus,
        metrics,
        options,
        Reminders(lambda: options.current, metrics),
        batch_interval=0.2,
    )
    await consumer.bind()
    running = asyncio.create_task(consumer.run())
    try:
        yield metrics
    finally:
        consumer.stop()
        await running


async def add_token_and_channel(database: Database, user: Account) -> tuple[int, int]:
    async with database.session() as session:
        token = Token(user_id=user.id, key=f"dash{user.id:044d}", name=f"{user.username}-key")
        channel = Channel(name="upstream", type=1, key="k")
        session.add_all([token, channel])
        await session.flush()
        return token.id, channel.id


def traffic(user: Account, token_id: int, channel_id: int, now: int) -> list[UsageEvent]:
    """Requests over nine days, three models (two differing only in case), around midnight."""
    today = now // DAY
    moments = [
        now - 60,
        today * DAY,  # today's first second
        today * DAY - 1,  # yesterday's last second
        (today - 2) * DAY + 3600,
        (today - 6) * DAY,  # the window's first second
        (today - 6) * DAY - 1,  # just out of the window
        (today - 8) * DAY,
    ]
    models = ["gpt-4o-mini", "claude-3-haiku", "GPT-4o-mini"]
    events = []
    for i in range(42):
        event = usage(
            f"dash-{user.id}-{i}",
            token_id=token_id,
            user_id=user.id,
            channel_id=channel_id,
            quota=100 + 37 * i,
            created_at=moments[i % len(moments)],
        )
        events.append(msgspec.structs.replace(event, model=models[i % 3], username=user.username))
    return events


def expected_dashboard(events: Sequence[UsageEvent], now: int) -> list[dict[str, Any]]:
    today = now // DAY
    sums: dict[tuple[int, str], Counter[str]] = {}
    for event in {event.request_id: event for event in events}.values():
        day = event.created_at // DAY
        if today - 6 <= day <= today:
            total = sums.setdefault((day, event.model), Counter())
            total.update(
                RequestCount=1,
                Quota=event.quota,
                PromptTokens=event.prompt_tokens,
                CompletionTokens=event.completion_tokens,
            )
    return [
        {"Day": date_of(day), "ModelName": model, **sums[(day, model)]}
        for day, model in sorted(sums)
    ]


async def dashboard_of_the_logs(client: httpx.AsyncClient, now: int) -> list[dict[str, Any]]:
    """What the user's own consume logs say, grouped as the dashboard groups them."""
    logs: list[dict[str, Any]] = []
    for page in range(100):
        found = assert_ok(await client.get("/api/log/self", params={"p": page, "size": 100}))
        logs.extend(found)
        if len(found) < 100:
            break
    today = now // DAY
    sums: dict[tuple[int, str], Counter[str]] = {}
    for log in logs:
        day = log["created_at"] // DAY
        if log["type"] == 2 and today - 6 <= day <= today:
            sums.setdefault((day, log["model_name"]), Counter()).update(
                RequestCount=1,
                Quota=log["quota"],
                PromptTokens=log["prompt_tokens"],
                CompletionTokens=log["completion_tokens"],
            )
    return [
        {"Day": date_of(day), "ModelName": model, **sums[(day, model)]}
        for day, model in sorted(sums)
    ]


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows by (day, model): the databases order model names by their own collations."""
    return {(row["Day"], row["ModelName"]): row for row in rows}


async def test_the_dashboard_equals_the_logs_billing_wrote_and_redelivery_counts_once(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    bob = await admin.add_user("bob")
    now = int(time.time())
    events: list[UsageEvent] = []
    for user in (alice, bob):
        token_id, channel_id = await add_token_and_channel(admin.database, user)
        events += traffic(user, token_id, channel_id, now)

    async with billing(admin.database, admin.bus):
        await publish_all(admin.bus, events)
        await wait_drained(admin.bus, timeout=30)
        client = admin.client(alice)
        first = assert_ok(await client.get("/api/user/dashboard"))
        # The same requests again (new message ids, past JetStream's deduplication), some
        # of them twice in one batch.
        again = events + events[:10]
        await publish_all(admin.bus, again, msg_ids=[f"again-{i}" for i in range(len(again))])
        await wait_drained(admin.bus, timeout=30)

    dashboard = assert_ok(await client.get("/api/user/dashboard"))
    assert dashboard == first
    alices = [event for event in events if event.user_id == alice.id]
    assert by_key(dashboard) == by_key(expected_dashboard(alices, now))
    assert by_key(dashboard) == by_key(await dashboard_of_the_logs(client, now))
    assert {row["ModelName"] for row in dashboard} == {
        "gpt-4o-mini",
        "GPT-4o-mini",
        "claude-3-haiku",
    }
    assert len({row["Day"] for row in dashboard}) == 4
    assert set(dashboard[0]) == DASHBOARD_FIELDS
    async with admin.database.log_session() as session:
        logged = await session.scalar(select(func.count()).select_from(Log))
    assert logged == len(events)


async def test_without_consume_logs_the_dashboard_stays_empty_as_in_one_api(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    token_id, channel_id = await add_token_and_channel(admin.database, alice)
    async with admin.database.session() as session:
        session.add(Option(key="LogConsumeEnabled", value="false"))
    now = int(time.time())
    async with billing(admin.database, admin.bus):
        await publish_all(admin.bus, traffic(alice, token_id, channel_id, now)[:5])
        await wait_drained(admin.bus, timeout=30)
    assert assert_ok(await admin.client(alice).get("/api/user/dashboard")) == []
    async with admin.database.session() as session:
        charged = await session.scalar(select(User.used_quota).where(User.id == alice.id))
    assert charged  # billing did run


@pytest.fixture
def fast_log_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "LOG_RETRY_DELAY_SECONDS", 0.3)


@pytest.mark.usefixtures("fast_log_retry")
async def test_a_log_repaired_in_a_logs_database_of_its_own_is_summed_once(
    tmp_path: Path, nats_url: str, nats_namespace: str
) -> None:
    logs_file = tmp_path / "logs.db"
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'main.db'}",
        f"sqlite+aiosqlite:///{logs_file}",
        pool=PoolOptions(sqlite_busy_timeout_ms=200),
    )
    await upgrade(database)
    try:
        async with admin_harness(database, nats_url, nats_namespace) as admin:
            alice = await admin.add_user("alice")
            token_id, channel_id = await add_token_and_channel(database, alice)
            now = int(time.time())
            events = traffic(alice, token_id, channel_id, now)
            async with billing(database, admin.bus) as metrics:
                # Another writer holds the logs database: the first log writes fail after
                # the charge is committed, and the logs are written on redelivery.
                holder = sqlite3.connect(logs_file, timeout=5)
                holder.execute("BEGIN EXCLUSIVE")
                try:
                    await publish_all(admin.bus, events)

                    async def log_write_failed() -> bool:
                        failures: float = metrics.log_failures._value.get()
                        return failures >= 1

                    await wait_for(log_write_failed, timeout=30, what="a failed log write")
                finally:
                    holder.rollback()
                    holder.close()
                await wait_drained(admin.bus, timeout=30)

            client = admin.client(alice)
            dashboard = assert_ok(await client.get("/api/user/dashboard"))
            assert by_key(dashboard) == by_key(expected_dashboard(events, now))
            assert by_key(dashboard) == by_key(await dashboard_of_the_logs(client, now))
    finally:
        await database.dispose()
