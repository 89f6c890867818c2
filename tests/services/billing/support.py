"""Helpers of the billing tests: seeded accounts, usage traffic, expected sums, drains."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import func, select

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Channel, Log, Option, Token, User
from libs.common.events import USAGE_STREAM, UsageEvent
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi.targets import build_registry


@dataclass
class Accounts:
    """Seeded users, tokens (each with its user) and channels, with their starting balances."""

    users: dict[int, int] = field(default_factory=dict)  # id -> quota
    tokens: dict[int, tuple[int, int, bool]] = field(
        default_factory=dict
    )  # id -> user, quota, unl.
    channels: list[int] = field(default_factory=list)


async def seed_accounts(
    database: Database,
    *,
    users: int,
    tokens: int,
    channels: int = 3,
    user_quota: int = 10**12,
    token_quota: Callable[[int], int] | None = None,
    unlimited: Callable[[int], bool] | None = None,
    emails: Callable[[int], str] | None = None,
) -> Accounts:
    accounts = Accounts()
    async with database.session() as session:
        user_rows = [
            User(
                username=f"user{i}",
                password="x",
                quota=user_quota,
                email=emails(i) if emails else "",
            )
            for i in range(users)
        ]
        session.add_all(user_rows)
        channel_rows = [Channel(name=f"ch{i}", type=1, key="k") for i in range(channels)]
        session.add_all(channel_rows)
        await session.flush()
        token_rows = []
        for i in range(tokens):
            owner = user_rows[i % users]
            token_rows.append(
                Token(
                    user_id=owner.id,
                    key=f"key{i:045d}",
                    name=f"token{i}",
                    remain_quota=token_quota(i) if token_quota else 10**9,
                    unlimited_quota=unlimited(i) if unlimited else False,
                )
            )
        session.add_all(token_rows)
        await session.flush()
        accounts.users = {row.id: row.quota for row in user_rows}
        accounts.tokens = {
            row.id: (row.user_id, row.remain_quota, row.unlimited_quota) for row in token_rows
        }
        accounts.channels = [row.id for row in channel_rows]
    return accounts


def usage(
    request_id: str,
    *,
    token_id: int,
    user_id: int,
    channel_id: int,
    quota: int,
    created_at: int | None = None,
) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        user_id=user_id,
        token_id=token_id,
        token_name=f"token{token_id}",
        username=f"user{user_id}",
        channel_id=channel_id,
        channel_type=1,
        model="gpt-4o-mini",
        group="default",
        prompt_tokens=quota // 3,
        completion_tokens=quota // 7,
        cached_tokens=1,
        reasoning_tokens=2,
        model_ratio=0.075,
        completion_ratio=4.0,
        group_ratio=1.0,
        quota=quota,
        created_at=created_at if created_at is not None else int(time.time()),
        elapsed_ms=123,
        is_stream=quota % 2 == 0,
        content="模型倍率 0.075，补全倍率 4.00，分组倍率 1.00",
    )


def random_traffic(accounts: Accounts, count: int, rng: random.Random) -> list[UsageEvent]:
    token_ids = sorted(accounts.tokens)
    base = int(time.time()) - 3600
    events = []
    for i in range(count):
        token_id = rng.choice(token_ids)
        events.append(
            usage(
                f"req{i:08d}{rng.getrandbits(24):06x}",
                token_id=token_id,
                user_id=accounts.tokens[token_id][0],
                channel_id=rng.choice(accounts.channels),
                quota=rng.randint(0, 5000),
                created_at=base + i // 10,
            )
        )
    return events


@dataclass
class Expected:
    token_used: Counter[int]
    user_used: Counter[int]
    user_requests: Counter[int]
    channel_used: Counter[int]


def expected_sums(events: Sequence[UsageEvent]) -> Expected:
    """What billing must charge: every request id once."""
    unique = {event.request_id: event for event in events}.values()
    expected = Expected(Counter(), Counter(), Counter(), Counter())
    for event in unique:
        expected.token_used[event.token_id] += event.quota
        expected.user_used[event.user_id] += event.quota
        expected.user_requests[event.user_id] += 1
        expected.channel_used[event.channel_id] += event.quota
    return expected


async def assert_exact(
    database: Database, accounts: Accounts, events: Sequence[UsageEvent]
) -> None:
    """Every balance, used quota, request count and consume log is what `events` imply."""
    expected = expected_sums(events)
    async with database.session() as session:
        tokens = {row.id: row for row in (await session.execute(select(Token))).scalars()}
        users = {row.id: row for row in (await session.execute(select(User))).scalars()}
        channels = {row.id: row for row in (await session.execute(select(Channel))).scalars()}
    for token_id, (_, start, unlimited) in accounts.tokens.items():
        token = tokens[token_id]
        used = expected.token_used[token_id]
        assert token.used_quota == used, f"token {token_id}"
        assert token.remain_quota == (start if unlimited else start - used), f"token {token_id}"
        exhausted = not unlimited and start - used <= 0
        assert token.status == (4 if exhausted else 1), f"token {token_id}"
    for user_id, start in accounts.users.items():
        user = users[user_id]
        assert user.used_quota == expected.user_used[user_id], f"user {user_id}"
        assert user.quota == start - expected.user_used[user_id], f"user {user_id}"
        assert user.request_count == expected.user_requests[user_id], f"user {user_id}"
    for channel_id in accounts.channels:
        assert channels[channel_id].used_quota == expected.channel_used[channel_id]
    unique_ids = {event.request_id for event in events}
    async with database.log_session() as session:
        rows = await session.execute(
            select(Log.request_id, func.count()).where(Log.type == 2).group_by(Log.request_id)
        )
        logged = {str(rid): int(n) for rid, n in rows.all()}
    assert set(logged) == unique_ids
    assert set(logged.values()) == {1}


async def publish_all(
    bus: Bus, events: Sequence[UsageEvent], msg_ids: Sequence[str] | None = None
) -> None:
    """Publish to the usage stream, a few hundred in flight at a time."""
    ids = list(msg_ids) if msg_ids is not None else [event.request_id for event in events]
    for start in range(0, len(events), 200):
        await asyncio.gather(
            *(
                bus.publish_durable(event, msg_id=msg_id, timeout=30)
                for event, msg_id in zip(
                    events[start : start + 200], ids[start : start + 200], strict=True
                )
            )
        )


async def stream_messages(bus: Bus) -> int:
    """Messages left in the usage stream (a work queue: acked messages are removed)."""
    info = await bus.jetstream.stream_info(bus.namespace.stream(USAGE_STREAM))
    return int(info.state.messages)


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def wait_drained(bus: Bus, *, timeout: float = 60) -> None:
    async def drained() -> bool:
        return await stream_messages(bus) == 0

    await wait_for(drained, timeout=timeout, what="billing to drain the usage stream")


async def set_options(database: Database, options: dict[str, str]) -> None:
    async with database.session() as session:
        for key, value in options.items():
            await session.merge(Option(key=key, value=value))


async def migrated(url: str, logs_url: str | None = None) -> Database:
    database = Database(url, logs_url)
    await upgrade(database)
    return database


@asynccontextmanager
async def billing_runtime(
    *,
    sql_dsn: str,
    nats_url: str,
    namespace: str,
    targets: Sequence[str] = ("billing",),
    **settings: object,
) -> AsyncIterator[Runtime]:
    """Billing (and whatever else `targets` names) in this event loop, on a migrated schema."""
    config = Settings(
        port=0,
        host="127.0.0.1",
        sql_dsn=sql_dsn,
        nats_url=nats_url,
        nats_namespace=namespace,
        batch_update_interval=1,
        shutdown_grace_seconds=5,
        **settings,  # type: ignore[arg-type]
    )
    runtime = Runtime(config, build_registry(), list(targets), version="test")
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
