"""Billing's behaviour around the charge: dead letters, options, separate logs, reminders."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from libs.common.bus import Bus
from libs.common.db import Database, PoolOptions
from libs.common.db.migrations import upgrade
from libs.common.db.models import Log, SettledRequest, Token, User
from libs.common.events import (
    DEAD_REASON_HEADER,
    USAGE,
    USAGE_DEAD_STREAM,
    encode,
)
from services.billing import consumer as consumer_module
from services.billing.consumer import BillingConsumer, OptionsHolder
from services.billing.mail import Reminders
from services.billing.metrics import BillingMetrics
from tests.harness.process import free_port
from tests.services.billing.support import (
    assert_exact,
    billing_runtime,
    migrated,
    publish_all,
    seed_accounts,
    set_options,
    stream_messages,
    usage,
    wait_drained,
    wait_for,
)


@pytest.fixture
async def bus(nats_url: str, nats_namespace: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, namespace=nats_namespace)
    await bus.ensure_streams()
    yield bus
    await bus.close()


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    database = await migrated(postgres_url)
    yield database
    await database.dispose()


async def count(database: Database, model: Any, *, logs: bool = False) -> int:
    session_of = database.log_session if logs else database.session
    async with session_of() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# --- dead letters ------------------------------------------------------------------------------


async def test_bad_messages_are_dead_lettered_with_their_reason_and_block_nothing(
    database: Database, postgres_url: str, nats_url: str, nats_namespace: str, bus: Bus
) -> None:
    accounts = await seed_accounts(database, users=1, tokens=1)
    [token_id] = accounts.tokens
    [user_id] = accounts.users
    channel = accounts.channels[0]

    def event(request_id: str, **fields: Any) -> Any:
        values: dict[str, Any] = {
            "token_id": token_id,
            "user_id": user_id,
            "channel_id": channel,
            "quota": 100,
        }
        values.update(fields)
        return usage(request_id, **values)

    good = [event("good-1"), event("good-2")]
    negative = event("negative", quota=-5)
    no_token = event("no-token", token_id=0)
    subject = bus.namespace.subject(USAGE)
    async with billing_runtime(
        sql_dsn=postgres_url, nats_url=nats_url, namespace=nats_namespace
    ) as runtime:
        await publish_all(bus, [good[0], negative])
        await bus.jetstream.publish(subject, b'{"not": "usage"}', headers={"Nats-Msg-Id": "junk"})
        await publish_all(bus, [no_token, good[1]])
        await wait_drained(bus)
        dead = runtime.metrics.get_sample_value
        assert dead("oneapi_billing_dead_letters_total", {"reason": "invalid"}) == 2
        assert dead("oneapi_billing_dead_letters_total", {"reason": "decode"}) == 1

    await assert_exact(database, accounts, good)
    js = bus.jetstream
    stream = bus.namespace.stream(USAGE_DEAD_STREAM)
    reasons = {}
    for sequence in range(1, 4):
        stored = await js.get_msg(stream, sequence)
        reasons[(stored.headers or {})["Nats-Msg-Id"]] = (stored.headers or {})[DEAD_REASON_HEADER]
        if (stored.headers or {})["Nats-Msg-Id"] == "negative":
            assert stored.data == encode(negative)  # kept byte for byte
    assert reasons["negative"] == "quota is negative (-5)"
    assert reasons["no-token"] == "token_id is missing (got 0)"
    assert reasons["junk"].startswith("invalid UsageEvent message")


# --- LogConsumeEnabled -------------------------------------------------------------------------


async def test_without_consume_logs_a_request_is_still_charged_once(
    database: Database, postgres_url: str, nats_url: str, nats_namespace: str, bus: Bus
) -> None:
    await set_options(database, {"LogConsumeEnabled": "false"})
    accounts = await seed_accounts(database, users=2, tokens=4)
    events = [
        usage(
            f"nolog-{i}",
            token_id=token_id,
            user_id=owner,
            channel_id=accounts.channels[i % 3],
            quota=100 + i,
        )
        for i, (token_id, (owner, _, _)) in enumerate(list(accounts.tokens.items()) * 5)
    ]
    async with billing_runtime(sql_dsn=postgres_url, nats_url=nats_url, namespace=nats_namespace):
        await publish_all(bus, events)
        await wait_drained(bus)
        # The same requests again, under new message ids (past JetStream's window).
        await publish_all(bus, events, msg_ids=[f"again-{e.request_id}" for e in events])
        await wait_drained(bus)

    assert await count(database, Log, logs=True) == 0
    assert await count(database, SettledRequest) == len(events)
    async with database.session() as session:
        used = (await session.execute(select(func.sum(User.used_quota)))).scalar_one()
        requests = (await session.execute(select(func.sum(User.request_count)))).scalar_one()
        tokens = (await session.execute(select(func.sum(Token.used_quota)))).scalar_one()
    assert used == tokens == sum(event.quota for event in events)
    assert requests == len(events)


# --- a logs database of its own ----------------------------------------------------------------


@pytest.fixture
def fast_log_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "LOG_RETRY_DELAY_SECONDS", 0.3)


@pytest.mark.usefixtures("fast_log_retry")
async def test_a_logs_database_that_fails_once_loses_no_log_and_charges_nothing_twice(
    postgres_url: str, tmp_path: Path, bus: Bus
) -> None:
    logs_file = tmp_path / "logs.db"
    database = Database(
        postgres_url,
        f"sqlite+aiosqlite:///{logs_file}",
        pool=PoolOptions(sqlite_busy_timeout_ms=200),
    )
    await upgrade(database)
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
    try:
        accounts = await seed_accounts(database, users=2, tokens=3)
        events = [
            usage(
                f"split-{i}",
                token_id=token_id,
                user_id=owner,
                channel_id=accounts.channels[0],
                quota=1000 + i,
            )
            for i, (token_id, (owner, _, _)) in enumerate(list(accounts.tokens.items()) * 10)
        ]
        # Another writer holds the logs database: billing's log write times out.
        holder = sqlite3.connect(logs_file, timeout=5)
        holder.execute("BEGIN EXCLUSIVE")
        running = asyncio.create_task(consumer.run())
        try:
            await publish_all(bus, events)

            async def charged() -> bool:
                async with database.session() as session:
                    total = (await session.execute(select(func.sum(User.used_quota)))).scalar()
                return total == sum(event.quota for event in events)

            await wait_for(charged, timeout=30, what="the main database to be charged")

            async def log_write_failed() -> bool:
                return _value(metrics.log_failures) >= 1

            await wait_for(log_write_failed, timeout=30, what="a failed log write")
            assert await stream_messages(bus) > 0  # not acked: their logs are still owed
        finally:
            holder.rollback()
            holder.close()
        await wait_drained(bus, timeout=30)
        consumer.stop()
        await running
        await assert_exact(database, accounts, events)
        assert _value(metrics.log_repairs) == len(events)
        assert _value(metrics.events) == len(events)
        async with database.session() as session:
            owed = await session.execute(
                select(func.count()).where(SettledRequest.log_pending.is_(True))
            )
            assert owed.scalar_one() == 0
    finally:
        await database.dispose()


def _value(counter: Any) -> float:
    """The value of an unlabelled counter."""
    return float(counter._value.get())


# --- quota reminders ---------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def subjects_for(self, address: str) -> list[str]:
        with self._lock:
            received = list(self.received)
        return [
            str(make_header(decode_header(message_from_bytes(content)["Subject"])))
            for recipients, content in received
            if address in recipients
        ]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def _emails(i: int) -> str:
    return ["rich@example.com", "poor@example.com", ""][i]


async def test_a_user_crossing_the_reminder_threshold_gets_one_email_per_crossing(
    database: Database,
    postgres_url: str,
    nats_url: str,
    nats_namespace: str,
    bus: Bus,
    smtp_server: tuple[int, Inbox],
) -> None:
    port, inbox = smtp_server
    await set_options(
        database,
        {
            "SMTPServer": "127.0.0.1",
            "SMTPPort": str(port),
            "SMTPFrom": "billing@example.com",
            "QuotaRemindThreshold": "10000",
            "ServerAddress": "https://api.example.com",
        },
    )
    accounts = await seed_accounts(database, users=3, tokens=3, user_quota=15_000, emails=_emails)
    # Make user 0 rich: it never nears the threshold.
    async with database.session() as session:
        rich = await session.get(User, min(accounts.users))
        assert rich is not None
        rich.quota = 10**9
    accounts.users[min(accounts.users)] = 10**9

    def spend(prefix: str) -> list[Any]:
        return [
            usage(
                f"{prefix}-{token_id}-{i}",
                token_id=token_id,
                user_id=owner,
                channel_id=accounts.channels[0],
                quota=1000,
            )
            for token_id, (owner, _, _) in accounts.tokens.items()
            for i in range(10)
        ]

    first, second = spend("low"), spend("out")
    async with billing_runtime(sql_dsn=postgres_url, nats_url=nats_url, namespace=nats_namespace):
        await publish_all(bus, first)  # 15,000 -> 5,000: below the threshold
        await wait_drained(bus)

        async def reminded(n: int) -> bool:
            return len(inbox.subjects_for("poor@example.com")) >= n

        await wait_for(lambda: reminded(1), timeout=15, what="the first reminder")
        await publish_all(bus, second)  # 5,000 -> -5,000: none left
        await wait_drained(bus)
        await wait_for(lambda: reminded(2), timeout=15, what="the second reminder")

    await assert_exact(database, accounts, first + second)
    assert inbox.subjects_for("poor@example.com") == ["您的额度即将用尽", "您的额度已用尽"]
    assert inbox.subjects_for("rich@example.com") == []
    [(_, content)] = [m for m in inbox.received if "poor@example.com" in m[0]][:1]
    text = message_from_bytes(content).get_payload(decode=True)
    assert isinstance(text, bytes)
    assert "当前剩余额度为 5000" in text.decode()
    assert "https://api.example.com/topup" in text.decode()


async def test_an_unreachable_mail_server_never_holds_billing_up(
    database: Database, postgres_url: str, nats_url: str, nats_namespace: str, bus: Bus
) -> None:
    await set_options(
        database,
        {
            "SMTPServer": "127.0.0.1",
            "SMTPPort": str(free_port()),  # nothing listens there
            "SMTPFrom": "billing@example.com",
            "QuotaRemindThreshold": "10000",
        },
    )
    accounts = await seed_accounts(
        database, users=1, tokens=1, user_quota=12_000, emails=lambda _: "u@example.com"
    )
    [(token_id, (owner, _, _))] = accounts.tokens.items()
    events = [
        usage(
            f"m-{i}", token_id=token_id, user_id=owner, channel_id=accounts.channels[0], quota=500
        )
        for i in range(20)
    ]
    async with billing_runtime(
        sql_dsn=postgres_url, nats_url=nats_url, namespace=nats_namespace
    ) as runtime:
        await publish_all(bus, events)
        await wait_drained(bus)

        async def failed() -> bool:
            value = runtime.metrics.get_sample_value(
                "oneapi_billing_quota_reminders_total", {"result": "failed"}
            )
            return value == 1

        await wait_for(failed, timeout=30, what="the reminder to fail")
    await assert_exact(database, accounts, events)
