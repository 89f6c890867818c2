"""logs_0002: `log_daily_usage` is created, filled from the consume logs, and dropped again."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, insert, inspect, select

from libs.common.db import Database
from libs.common.db.migrations import current_revisions, downgrade, upgrade
from libs.common.db.models import Log, LogDailyUsage, LogType

DAY = 86_400
D = 19_700
"""A day number (2023-12-09)."""


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def one_api_logs() -> list[dict[str, Any]]:
    """Logs as a database migrated from One API holds them: consume logs of two users over
    three days and three models (two differing only in case), and logs of other types."""
    rows: list[dict[str, Any]] = []
    for i in range(60):
        rows.append(
            {
                "user_id": 1 + i % 2,
                "created_at": (D + i % 3) * DAY + (i * 997) % DAY,
                "type": int(LogType.CONSUME),
                "content": "倍率：1.00 × 1.00",
                "model_name": ["gpt-4", "GPT-4", "claude-3-opus"][i % 3 if i % 5 else 0],
                "quota": 1000 + i,
                "prompt_tokens": 10 + i,
                "completion_tokens": i,
            }
        )
    for log_type in (LogType.TOPUP, LogType.MANAGE, LogType.SYSTEM, LogType.TEST):
        rows.append(
            {
                "user_id": 1,
                "created_at": D * DAY + 5,
                "type": int(log_type),
                "content": "not consumption",
                "model_name": "gpt-4",
                "quota": 10**6,
                "prompt_tokens": 0,
                "completion_tokens": 0,
            }
        )
    return rows


def expected_sums(rows: list[dict[str, Any]]) -> dict[tuple[int, int, str], tuple[int, ...]]:
    sums: dict[tuple[int, int, str], Counter[str]] = {}
    for row in rows:
        if row["type"] != LogType.CONSUME:
            continue
        key = (row["user_id"], row["created_at"] // DAY, row["model_name"])
        sums.setdefault(key, Counter()).update(
            requests=1,
            quota=row["quota"],
            prompt=row["prompt_tokens"],
            completion=row["completion_tokens"],
        )
    return {
        key: (total["requests"], total["quota"], total["prompt"], total["completion"])
        for key, total in sums.items()
    }


async def stored_sums(database: Database) -> dict[tuple[int, int, str], tuple[int, ...]]:
    async with database.log_session() as session:
        rows = (await session.scalars(select(LogDailyUsage))).all()
    return {
        (row.user_id, row.day, row.model_name): (
            row.request_count,
            row.quota,
            row.prompt_tokens,
            row.completion_tokens,
        )
        for row in rows
    }


async def log_tables(database: Database) -> set[str]:
    async with database.logs_engine.connect() as connection:
        names: list[str] = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names)


async def test_the_upgrade_sums_the_existing_consume_logs_and_the_downgrade_drops_them(
    database: Database,
) -> None:
    await upgrade(database, "logs_0001")
    rows = one_api_logs()
    async with database.log_session() as session:
        await session.execute(insert(Log), rows)

    await upgrade(database, "logs_0002")

    assert (await current_revisions(database))["logs"] == "logs_0002"
    expected = expected_sums(rows)
    assert (1, D + 1, "gpt-4") in expected
    assert (1, D + 1, "GPT-4") in expected  # apart on MariaDB too
    assert await stored_sums(database) == expected

    await downgrade(database, "logs_0001")

    assert "log_daily_usage" not in await log_tables(database)
    async with database.log_session() as session:
        assert await session.scalar(select(func.count()).select_from(Log)) == len(rows)

    await upgrade(database)  # again, to head: the same sums
    assert await stored_sums(database) == expected


async def test_an_empty_logs_table_gives_an_empty_aggregate(database: Database) -> None:
    await upgrade(database)
    assert await stored_sums(database) == {}
    assert {"logs", "log_daily_usage"} <= await log_tables(database)
