"""`LogRetentionDays`: old logs go in small batches, the dashboard's aggregate stays longer."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from libs.common.db.models import Log, LogDailyUsage, LogType, Option
from services.admin.logs.retention import DAILY_USAGE_MIN_DAYS, LogRetention
from tests.services.admin.harness import AdminHarness
from tests.services.billing.support import wait_for

DAY = 86_400


async def set_retention(admin: AdminHarness, days: int) -> None:
    async with admin.database.session() as session:
        await session.merge(Option(key="LogRetentionDays", value=str(days)))


async def seed_logs(admin: AdminHarness, ages: dict[str, float], now: int) -> None:
    """A log per name, `ages[name]` days old, of every type in turn."""
    types = list(LogType)
    async with admin.database.log_session() as session:
        session.add_all(
            Log(
                created_at=now - int(age * DAY),
                type=types[i % len(types)],
                content=name,
                request_id=name,
            )
            for i, (name, age) in enumerate(ages.items())
        )


async def seed_usage_days(admin: AdminHarness, ages: list[int], now: int) -> None:
    today = now // DAY
    async with admin.database.log_session() as session:
        session.add_all(
            LogDailyUsage(user_id=user, day=today - age, model_name="gpt-4o", request_count=1)
            for age in ages
            for user in (1, 2)
        )


async def remaining_logs(admin: AdminHarness) -> set[str]:
    async with admin.database.log_session() as session:
        return set((await session.scalars(select(Log.request_id))).all())


async def remaining_usage_ages(admin: AdminHarness, now: int) -> list[int]:
    async with admin.database.log_session() as session:
        days = (await session.scalars(select(LogDailyUsage.day))).all()
    return sorted({now // DAY - day for day in days})


async def test_retention_deletes_every_log_older_than_the_option_in_batches(
    admin: AdminHarness,
) -> None:
    now = int(time.time())
    old = {f"old{i}": 30 + i / 10 for i in range(11)}
    kept = {"edge": 4.99, "recent": 1, "now": 0}
    await seed_logs(admin, {**old, **kept}, now)
    await seed_usage_days(admin, [0, 10, 300, DAILY_USAGE_MIN_DAYS, DAILY_USAGE_MIN_DAYS + 1], now)
    await set_retention(admin, 5)

    retention = LogRetention(admin.database, admin.state.cache, batch_size=3, pause=0)
    outcome = await retention.run_once(now)

    assert outcome.logs == len(old)
    assert await remaining_logs(admin) == set(kept)
    # The aggregate is kept for a year at least.
    assert outcome.daily_usage == 2
    assert await remaining_usage_ages(admin, now) == [0, 10, 300, DAILY_USAGE_MIN_DAYS]
    assert (await retention.run_once(now)).logs == 0


async def test_a_retention_longer_than_a_year_prunes_the_aggregate_with_the_logs(
    admin: AdminHarness,
) -> None:
    now = int(time.time())
    await seed_logs(admin, {"older": 501, "newer": 499}, now)
    await seed_usage_days(admin, [499, 501, 900], now)
    await set_retention(admin, 500)

    outcome = await LogRetention(admin.database, admin.state.cache).run_once(now)

    assert (outcome.logs, outcome.daily_usage) == (1, 4)
    assert await remaining_logs(admin) == {"newer"}
    assert await remaining_usage_ages(admin, now) == [499]


async def test_without_the_option_every_log_is_kept(admin: AdminHarness) -> None:
    now = int(time.time())
    await seed_logs(admin, {"ancient": 3000}, now)
    await seed_usage_days(admin, [3000], now)
    retention = LogRetention(admin.database, admin.state.cache)

    assert (await retention.run_once(now)).logs == 0
    await set_retention(admin, 0)
    assert (await retention.run_once(now)).logs == 0

    assert await remaining_logs(admin) == {"ancient"}
    assert await remaining_usage_ages(admin, now) == [3000]


async def test_replicas_running_at_once_delete_each_old_log_once(admin: AdminHarness) -> None:
    now = int(time.time())
    old = {f"old{i}": 10 + i / 100 for i in range(40)}
    await seed_logs(admin, {**old, "recent": 1}, now)
    await set_retention(admin, 7)
    replicas = [
        LogRetention(admin.database, admin.state.cache, batch_size=5, pause=0) for _ in range(3)
    ]

    outcomes = await asyncio.gather(*(replica.run_once(now) for replica in replicas))

    assert sum(outcome.logs for outcome in outcomes) == len(old)
    assert await remaining_logs(admin) == {"recent"}


async def test_the_background_task_applies_the_option(admin: AdminHarness) -> None:
    now = int(time.time())
    await seed_logs(admin, {"stale": 3, "fresh": 0}, now)
    await set_retention(admin, 2)
    task = asyncio.create_task(LogRetention(admin.database, admin.state.cache).run())
    try:

        async def stale_gone() -> bool:
            return await remaining_logs(admin) == {"fresh"}

        await wait_for(stale_gone, timeout=10, what="the retention task to delete the stale log")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
