"""Billing throughput on PostgreSQL against a plain INSERT-per-event consumer, in one run.

    python -m bench.billing_bench [--events 100000] [--baseline-events 20000]

Both consumers drain the same kind of backlog from a real JetStream `usage` stream (an
embedded nats-server in a temporary directory) into a fresh PostgreSQL database
(ONEAPI_BENCH_POSTGRES_URL, default the local server's `postgres` database, used only to
create and drop the bench's own):

* billing: the service's consumer (batches of 500, one transaction each: idempotency keys,
  aggregated increments, consume logs, balances read back, acks, `quota.updated`);
* baseline: fetch the same way, then per event one transaction with one INSERT of its
  consume log, then ack: the cheapest per-event write, with no idempotency and no balances.

The publishing is not timed. Events/s is events / time to drain the stream; the ratio is
billing's rate over the baseline's. The run then checks that billing charged every unit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from sqlalchemy import func, insert, select

from libs.common.bus import Bus, EmbeddedNats
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Channel, Log, Token, User
from libs.common.events import BILLING_CONSUMER, USAGE_STREAM, UsageEvent
from services.billing.consumer import BillingConsumer, OptionsHolder
from services.billing.mail import Reminders
from services.billing.metrics import BillingMetrics
from services.billing.repository import LOGS, log_row

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKENS = 1000
USERS = 100
CHANNELS = 10


@dataclass
class Run:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def async_url(server: str, database: str) -> str:
    return f"postgresql+asyncpg://{urlsplit(server).netloc}/{database}"


async def seed(database: Database) -> dict[int, int]:
    """Users, tokens and channels; returns token id -> user id."""
    async with database.session() as session:
        users = [
            User(username=f"u{i}", password="x", quota=10**13)  # noqa: S106 - never logs in
            for i in range(USERS)
        ]
        session.add_all(users)
        session.add_all(Channel(name=f"c{i}", type=1, key="k") for i in range(CHANNELS))
        await session.flush()
        tokens = [
            Token(
                user_id=users[i % USERS].id,
                key=f"k{i:047d}",
                name=f"t{i}",
                remain_quota=10**12,
            )
            for i in range(TOKENS)
        ]
        session.add_all(tokens)
        await session.flush()
        return {token.id: token.user_id for token in tokens}


def traffic(owners: dict[int, int], count: int, rng: random.Random) -> list[UsageEvent]:
    token_ids = sorted(owners)
    now = int(time.time())
    events = []
    for i in range(count):
        token_id = rng.choice(token_ids)
        quota = rng.randint(1, 5000)
        events.append(
            UsageEvent(
                request_id=f"bench{i:09d}{uuid.uuid4().hex[:8]}",
                user_id=owners[token_id],
                token_id=token_id,
                token_name=f"t{token_id}",
                username=f"u{owners[token_id]}",
                channel_id=rng.randint(1, CHANNELS),
                channel_type=1,
                model="gpt-4o-mini",
                group="default",
                prompt_tokens=quota // 2,
                completion_tokens=quota // 8,
                model_ratio=0.075,
                completion_ratio=4.0,
                group_ratio=1.0,
                quota=quota,
                created_at=now,
                elapsed_ms=321,
                content="模型倍率 0.075，补全倍率 4.00，分组倍率 1.00",
            )
        )
    return events


async def publish(bus: Bus, events: Sequence[UsageEvent]) -> None:
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        await asyncio.gather(
            *(bus.publish_durable(event, msg_id=event.request_id, timeout=30) for event in chunk)
        )


async def backlog(bus: Bus) -> int:
    info = await bus.jetstream.stream_info(bus.namespace.stream(USAGE_STREAM))
    return int(info.state.messages)


async def wait_drained(bus: Bus, timeout: float) -> None:  # noqa: ASYNC109 - a bench bound
    deadline = time.monotonic() + timeout
    while await backlog(bus) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the usage stream did not drain within {timeout:g}s")
        await asyncio.sleep(0.05)


async def run_billing(database: Database, bus: Bus, count: int) -> float:
    metrics = BillingMetrics(CollectorRegistry())
    options = OptionsHolder(database)
    await options.reload()
    consumer = BillingConsumer(
        database,
        bus,
        metrics,
        options,
        Reminders(lambda: options.current, metrics),
        batch_size=500,
        batch_interval=1.0,
    )
    await consumer.bind()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    await wait_drained(bus, timeout=600)
    elapsed = time.perf_counter() - started
    consumer.stop()
    await task
    return elapsed


async def run_baseline(database: Database, bus: Bus) -> float:
    consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)
    logs = LOGS
    started = time.perf_counter()
    while await backlog(bus) > 0:
        for delivery in await consumer.fetch(batch=500, timeout=1.0):
            assert delivery.event is not None
            async with database.session() as session:
                await session.execute(insert(logs), log_row(delivery.event))
            await delivery.ack()
    elapsed = time.perf_counter() - started
    await consumer.unsubscribe()
    return elapsed


async def check_exact(database: Database, events: Sequence[UsageEvent]) -> None:
    expected = sum(event.quota for event in events)
    async with database.session() as session:
        tokens = (await session.execute(select(func.sum(Token.used_quota)))).scalar_one()
        users = (await session.execute(select(func.sum(User.used_quota)))).scalar_one()
        logs = (await session.execute(select(func.count()).select_from(Log))).scalar_one()
    if not (int(tokens) == int(users) == expected and int(logs) == len(events)):
        raise RuntimeError(
            f"billing is not exact: tokens {tokens}, users {users}, expected {expected}, "
            f"logs {logs} for {len(events)} events"
        )


async def bench(events_count: int, baseline_count: int, server: str) -> tuple[Run, Run]:
    rng = random.Random(7)
    names = [f"oneapi_bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        await admin(server, f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="billing-bench-") as tmp:
            async with EmbeddedNats(tmp) as nats:
                results = []
                for name, count, runner in (
                    (names[0], events_count, "billing"),
                    (names[1], baseline_count, "baseline"),
                ):
                    database = Database(async_url(server, name))
                    bus = await Bus.connect(nats.url, namespace=f"bench_{runner}")
                    try:
                        await upgrade(database)
                        owners = await seed(database)
                        await bus.ensure_streams()
                        events = traffic(owners, count, rng)
                        print(f"{runner}: publishing {count} events ...", flush=True)
                        await publish(bus, events)
                        print(f"{runner}: draining ...", flush=True)
                        if runner == "billing":
                            seconds = await run_billing(database, bus, count)
                            await check_exact(database, events)
                        else:
                            seconds = await run_baseline(database, bus)
                        results.append(Run(runner, count, seconds))
                    finally:
                        await bus.close()
                        await database.dispose()
                return results[0], results[1]
    finally:
        for name in names:
            await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    args = parser.parse_args(argv)
    server = os.environ.get("ONEAPI_BENCH_POSTGRES_URL", DEFAULT_SERVER)
    billing, baseline = asyncio.run(bench(args.events, args.baseline_events, server))
    print()
    print(f"billing on PostgreSQL ({TOKENS} tokens, {USERS} users, batches of 500)")
    for run in (billing, baseline):
        print(
            f"  {run.name:<9} {run.events:>7} events in {run.seconds:7.2f}s  "
            f"{run.rate:>9,.0f} events/s"
        )
    print(f"  ratio     billing / INSERT-per-event = {billing.rate / baseline.rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
