"""The unit of work: a batch from the usage stream, settled in one transaction, then acked.

    consumer = BillingConsumer(database, bus, metrics, options, reminders)
    await consumer.bind()
    task = ctx.spawn(consumer.run(), name="billing")      # until consumer.stop()

A batch is up to `batch_size` messages or what arrived within `batch_interval` seconds of its
first one, whichever comes first. For each batch:

1. messages that do not decode or cannot be charged go to the dead-letter stream (with the
   reason) and never block the others;
2. one main-database transaction charges the request ids not settled before (`service.settle`);
   when it fails it is retried in place, with backoff, while the messages are kept from
   redelivery (`in_progress`); a value the database refuses (`DataError`) splits the batch
   until the message at fault is alone, and dead-letters it;
3. with a logs database of its own (`LOG_SQL_DSN`) the consume logs are written after the
   main commit, each only if missing; if that fails, the messages whose log is owed are
   redelivered later (`nak` with a delay), find their request settled with `log_pending`, and
   only the log is written then. Nothing is charged twice and no log is lost;
4. only then are the messages acknowledged; `QuotaUpdated` carries the committed balances and
   every settled request id of the batch (re-settling ids charged earlier heals a relay that
   missed a previous `QuotaUpdated`); reminder emails go out in the background.

A crash anywhere before the acks redelivers the batch; the settled request ids make the
redelivery a no-op, except for logs still owed. An ambiguous commit (connection lost during
COMMIT) is the same case.

Tracing (with a `tracer`): each message gets a ``usage process`` consumer span whose parent
is the relay's span carried in the message's ``traceparent`` header (a root span when there
is none), from the batch's start to its settlement; its ``oneapi.billing.outcome`` says what
became of it (charged, duplicate, dead_letter, redeliver, abandoned). The batch itself is a
``usage settle`` span of its own, linked to its messages' spans. Log lines written about one
message carry its request id (`bind_request_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from sqlalchemy.exc import DataError

from libs.common.bus import Bus, BusError, BusUnavailable, Delivery, PullConsumer
from libs.common.db import Database
from libs.common.events import (
    BILLING_CONSUMER,
    USAGE,
    USAGE_STREAM,
    QuotaUpdated,
    TokenBalance,
    UsageEvent,
    UserBalance,
    consumer_spec,
)
from libs.common.options import OptionValues
from libs.common.telemetry import bind_request_id
from libs.common.tracing import extract_context
from services.billing import repository, service
from services.billing.mail import Reminders
from services.billing.metrics import BillingMetrics
from services.billing.schemas import Settlement, UserCharge, invalid_reason

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE: Final = 500
IDLE_FETCH_SECONDS: Final = 1.0
"""How long one fetch waits for a first message; also how quickly an idle loop sees stop()."""
MIN_FETCH_SECONDS: Final = 0.05
RETRY_BASE_SECONDS: Final = 0.25
RETRY_MAX_SECONDS: Final = 10.0
LOG_RETRY_DELAY_SECONDS: Final = 5.0
"""Messages whose log a separate logs database refused come back after this long."""
ACK_WAIT_SECONDS: Final = consumer_spec(USAGE_STREAM, BILLING_CONSUMER).backoff[0]
KEEPALIVE_SECONDS: Final = ACK_WAIT_SECONDS / 3
"""A batch still being settled tells the server so this often (well within the ack wait)."""
SETTLED_RETENTION_SECONDS: Final = 90 * 24 * 3600
"""How long a settled request id is kept: longer than any redelivery or re-publish can lag
(the relay retries a publish while NATS is away; its spill file outlives a restart)."""
PRUNE_CHUNK: Final = 5000


class OptionsHolder:
    """The `options` table as billing last read it (`LogConsumeEnabled`, reminders, SMTP)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.current = OptionValues()

    async def reload(self) -> None:
        async with self._database.session() as session:
            self.current = OptionValues(await repository.load_options(session))


@dataclass
class BatchOutcome:
    """A settled batch (or part of one): what to acknowledge and what to tell relays."""

    done: list[Delivery[UsageEvent]] = field(default_factory=list)
    """Settled, logs included: acknowledge."""
    later: list[Delivery[UsageEvent]] = field(default_factory=list)
    """Charged, but a separate logs database missed their logs: redeliver later."""
    charged: int = 0
    charged_ids: set[str] = field(default_factory=set)
    """The request ids this batch charged (the others were settled before)."""
    quota: int = 0
    request_ids: list[str] = field(default_factory=list)
    tokens: dict[int, TokenBalance] = field(default_factory=dict)
    users: dict[int, UserBalance] = field(default_factory=dict)
    user_charges: list[UserCharge] = field(default_factory=list)

    def absorb(self, other: BatchOutcome) -> None:
        """Add a later part's outcome (its balances are the newer ones)."""
        self.done += other.done
        self.later += other.later
        self.charged += other.charged
        self.charged_ids |= other.charged_ids
        self.quota += other.quota
        self.request_ids += other.request_ids
        self.tokens.update(other.tokens)
        self.users.update(other.users)
        self.user_charges += other.user_charges


class BillingConsumer:
    """Drains the `usage` stream into the database, one transaction per batch."""

    def __init__(
        self,
        database: Database,
        bus: Bus,
        metrics: BillingMetrics,
        options: OptionsHolder,
        reminders: Reminders,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_interval: float = 5.0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._database = database
        self._bus = bus
        self._metrics = metrics
        self._options = options
        self._reminders = reminders
        self._batch_size = max(1, batch_size)
        # Messages wait for their batch unattended: stay well inside the ack wait.
        self._batch_interval = min(max(0.0, batch_interval), ACK_WAIT_SECONDS / 2)
        self._consumer: PullConsumer[UsageEvent] | None = None
        self._stopping = asyncio.Event()
        self._tracer = tracer

    # --- lifecycle ---------------------------------------------------------------------------

    async def bind(self) -> None:
        """Bind to the durable `billing` consumer (declared by `Bus.ensure_streams`)."""
        self._consumer = await self._bus.pull_consumer(UsageEvent, BILLING_CONSUMER)

    def stop(self) -> None:
        """Finish the batch in hand (its transaction is not interrupted), then return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Fetch and settle batches until `stop()`.

        Fetching runs one batch ahead of settling, so that NATS and the database work at
        the same time; at most one batch waits settled-side, one more is being collected.
        """
        queue: asyncio.Queue[list[Delivery[UsageEvent]]] = asyncio.Queue(maxsize=1)
        fetcher = asyncio.create_task(self._fetch_into(queue), name="billing-fetch")
        try:
            while not (fetcher.done() and queue.empty()):
                try:
                    batch = await asyncio.wait_for(queue.get(), timeout=IDLE_FETCH_SECONDS)
                except TimeoutError:
                    continue
                await self.handle(batch)
        finally:
            if not fetcher.done():
                fetcher.cancel()
            await asyncio.gather(fetcher, return_exceptions=True)
        if not fetcher.cancelled() and fetcher.exception() is not None:
            raise fetcher.exception()  # type: ignore[misc]

    async def _fetch_into(self, queue: asyncio.Queue[list[Delivery[UsageEvent]]]) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                consumer = self._consumer
                if consumer is None:
                    await self._bus.ensure_streams()
                    await self.bind()
                    continue
                batch = await self._collect(consumer)
                failures = 0
            except BusError as exc:
                failures += 1
                logger.warning("cannot fetch usage messages: %s", exc)
                if not isinstance(exc, BusUnavailable):
                    self._consumer = None  # e.g. the consumer was deleted: declare and rebind
                await self._pause(_backoff(failures))
                continue
            if not batch:
                continue
            if self._stopping.is_set():
                await _release(batch)
                return
            await queue.put(batch)

    async def poll_lag(self, every: float = 5.0) -> None:
        """Keep the consumer-lag gauges current (runs until cancelled)."""
        while True:
            consumer = self._consumer
            if consumer is not None:
                try:
                    info = await consumer.info()
                except BusError as exc:
                    logger.debug("consumer info unavailable: %s", exc)
                else:
                    self._metrics.pending.set(info.num_pending or 0)
                    self._metrics.ack_pending.set(info.num_ack_pending or 0)
            await asyncio.sleep(every)

    async def prune(self, every: float = 3600.0) -> None:
        """Forget settled request ids older than the retention (runs until cancelled)."""
        while True:
            try:
                await self.prune_once(int(time.time()) - SETTLED_RETENTION_SECONDS)
            except Exception:
                logger.exception("pruning settled request ids failed; trying again later")
            await asyncio.sleep(every)

    async def prune_once(self, before: int) -> int:
        """Delete settled request ids older than `before` (Unix seconds) whose log is not owed."""
        deleted = 0
        while True:
            async with self._database.session() as session:
                ids = await repository.expired_settled_ids(session, before, PRUNE_CHUNK)
                deleted += await repository.delete_settled(session, ids)
            if len(ids) < PRUNE_CHUNK:
                return deleted

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- batching ----------------------------------------------------------------------------

    async def _collect(self, consumer: PullConsumer[UsageEvent]) -> list[Delivery[UsageEvent]]:
        """Up to `batch_size` messages, or those arrived within the interval of the first."""
        loop = asyncio.get_running_loop()
        batch: list[Delivery[UsageEvent]] = []
        deadline: float | None = None
        while len(batch) < self._batch_size and not self._stopping.is_set():
            if deadline is None:
                wait = IDLE_FETCH_SECONDS
            else:
                wait = deadline - loop.time()
                if wait <= 0:
                    break
            fetched = await consumer.fetch(
                batch=self._batch_size - len(batch), timeout=max(wait, MIN_FETCH_SECONDS)
            )
            if fetched and deadline is None:
                deadline = loop.time() + self._batch_interval
            batch.extend(fetched)
        return batch

    async def handle(self, deliveries: Sequence[Delivery[UsageEvent]]) -> None:
        """Settle one batch: dead letters, the transaction(s), acks, QuotaUpdated, reminders."""
        if self._tracer is None:
            await self._handle(deliveries, None)
            return
        spans = _MessageSpans(self._tracer, deliveries, self._bus.namespace.subject(USAGE))
        try:
            with self._tracer.start_as_current_span(
                "usage settle",
                context=otel_context.Context(),  # a trace of its own, linked to the messages'
                links=spans.links(),
                attributes={"messaging.batch.message_count": len(deliveries)},
            ):
                await self._handle(deliveries, spans)
        finally:
            spans.end()

    async def _handle(
        self, deliveries: Sequence[Delivery[UsageEvent]], spans: _MessageSpans | None
    ) -> None:
        started = time.perf_counter()
        valid: list[Delivery[UsageEvent]] = []
        for delivery in deliveries:
            if delivery.error is not None:
                await self._dead_letter(delivery, "decode", str(delivery.error), spans)
                continue
            assert delivery.event is not None
            reason = invalid_reason(delivery.event)
            if reason is not None:
                await self._dead_letter(delivery, "invalid", reason, spans)
                continue
            valid.append(delivery)
        if not valid:
            return
        keepalive = asyncio.create_task(_keep_alive(valid))
        try:
            outcome = await self._settle(valid, spans)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        if outcome is None:
            return  # abandoned while stopping: redelivered to whoever runs next
        if spans is not None:
            spans.settled(outcome)
        await self._acknowledge(outcome)
        await self._publish(outcome)
        threshold = self._options.current.integer("QuotaRemindThreshold")
        self._reminders.notify(service.reminders(outcome.user_charges, threshold))
        self._metrics.batch_size.observe(len(deliveries))
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.events.inc(outcome.charged)
        self._metrics.quota.inc(outcome.quota)
        self._metrics.duplicates.inc(len(outcome.done) + len(outcome.later) - outcome.charged)

    # --- settling ----------------------------------------------------------------------------

    async def _settle(
        self, deliveries: Sequence[Delivery[UsageEvent]], spans: _MessageSpans | None = None
    ) -> BatchOutcome | None:
        """Settle `deliveries`, retrying until done; None when abandoned because stopping."""
        attempt = 0
        while True:
            try:
                return await self.settle_once(deliveries)
            except DataError as exc:
                if len(deliveries) == 1:
                    await self._dead_letter(
                        deliveries[0],
                        "database",
                        f"the database refused it: {_short(exc)}",
                        spans,
                    )
                    return BatchOutcome()
                # One message holds a value the database refuses: find it by halves.
                middle = len(deliveries) // 2
                outcome = BatchOutcome()
                for part in (deliveries[:middle], deliveries[middle:]):
                    settled = await self._settle(part, spans)
                    if settled is None:
                        return None
                    outcome.absorb(settled)
                return outcome
            except Exception as exc:
                self._metrics.retries.inc()
                attempt += 1
                if self._stopping.is_set():
                    logger.warning(
                        "settling %d usage messages failed while stopping (%s); "
                        "leaving them for redelivery",
                        len(deliveries),
                        _short(exc),
                    )
                    return None
                delay = _backoff(attempt)
                logger.warning(
                    "settling %d usage messages failed (%s); retrying in %.1fs",
                    len(deliveries),
                    _short(exc),
                    delay,
                )
                await self._pause(delay)

    async def settle_once(self, deliveries: Sequence[Delivery[UsageEvent]]) -> BatchOutcome:
        """One attempt: the main transaction, then the logs when they live elsewhere."""
        events = service.unique_by_request(d.event for d in deliveries if d.event is not None)
        log_enabled = self._options.current.flag("LogConsumeEnabled")
        separate = self._database.logs_separate
        async with self._database.session() as session:
            settlement = await service.settle(
                session,
                events,
                now=int(time.time()),
                log_here=log_enabled and not separate,
                log_pending=log_enabled and separate,
            )
        late: set[str] = set()
        if separate:
            late = await self._write_separate_logs(events, settlement, log_enabled)
        return BatchOutcome(
            done=[d for d in deliveries if d.event is not None and d.event.request_id not in late],
            later=[d for d in deliveries if d.event is not None and d.event.request_id in late],
            charged=len(settlement.charged),
            charged_ids={event.request_id for event in settlement.charged},
            quota=settlement.quota,
            request_ids=[event.request_id for event in events],
            tokens={balance.id: balance for balance in settlement.tokens},
            users={balance.id: balance for balance in settlement.users},
            user_charges=settlement.user_charges,
        )

    async def _write_separate_logs(
        self, events: Sequence[UsageEvent], settlement: Settlement, log_enabled: bool
    ) -> set[str]:
        """Write the logs owed to the logs database; returns the request ids still owed."""
        owed = [
            event
            for event in events
            if (log_enabled and event.request_id not in settlement.already_settled)
            or settlement.already_settled.get(event.request_id, False)
        ]
        if not owed:
            return set()
        try:
            # Nested on purpose: the logs commit first, then main (which held the lock).
            async with self._database.session() as main, self._database.log_session() as logs:
                written = await service.write_missing_logs(main, logs, owed)
        except Exception as exc:
            self._metrics.log_failures.inc()
            logger.warning(
                "the logs database refused %d consume logs (%s); they are written on redelivery",
                len(owed),
                _short(exc),
            )
            return {event.request_id for event in owed}
        repaired = sum(1 for rid in written if rid in settlement.already_settled)
        if repaired:
            self._metrics.log_repairs.inc(repaired)
            logger.info("wrote %d consume logs missed by an earlier attempt", repaired)
        return set()

    # --- after the commit --------------------------------------------------------------------

    async def _acknowledge(self, outcome: BatchOutcome) -> None:
        try:
            for delivery in outcome.done:
                await delivery.ack()
            for delivery in outcome.later:
                await delivery.nak(delay=LOG_RETRY_DELAY_SECONDS)
        except BusError as exc:
            # Redelivered after the ack wait, and then found settled: nothing is charged twice.
            logger.warning("acknowledging settled usage messages failed: %s", exc)

    async def _publish(self, outcome: BatchOutcome) -> None:
        if not outcome.request_ids:
            return
        event = QuotaUpdated(
            tokens=list(outcome.tokens.values()),
            users=list(outcome.users.values()),
            request_ids=outcome.request_ids,
        )
        try:
            await self._bus.publish(event)
        except BusError as exc:
            logger.warning("quota.updated not published: %s", exc)

    async def _dead_letter(
        self,
        delivery: Delivery[UsageEvent],
        kind: str,
        reason: str,
        spans: _MessageSpans | None = None,
    ) -> None:
        request_id = delivery.event.request_id if delivery.event is not None else delivery.msg_id
        with bind_request_id(request_id):
            if spans is not None:
                spans.dead_letter(delivery, kind, reason)
            try:
                await delivery.dead_letter(reason)
            except BusError as exc:
                # Left unsettled: redelivered, and dead-lettered again then (same message id).
                logger.warning("cannot dead-letter a usage message (%s): %s", reason, exc)
                return
            self._metrics.dead_letters.labels(kind).inc()
            logger.warning(
                "usage message %s (stream sequence %d) dead-lettered: %s",
                delivery.msg_id or "-",
                delivery.stream_sequence,
                reason,
            )


async def _release(deliveries: Sequence[Delivery[UsageEvent]]) -> None:
    """Hand fetched messages back for immediate redelivery (stopping before settling them)."""
    try:
        for delivery in deliveries:
            await delivery.nak()
    except BusError as exc:
        logger.debug("nak not sent (redelivered after the ack wait): %s", exc)


async def _keep_alive(deliveries: Sequence[Delivery[UsageEvent]]) -> None:
    """Restart the ack wait of a batch whose settling takes long (a database away)."""
    while True:
        await asyncio.sleep(KEEPALIVE_SECONDS)
        try:
            for delivery in deliveries:
                await delivery.in_progress()
        except BusError as exc:
            logger.debug("in_progress not sent: %s", exc)


class _MessageSpans:
    """One ``usage process`` span per message of a batch, children of their publishers'."""

    def __init__(
        self, tracer: trace.Tracer, deliveries: Sequence[Delivery[UsageEvent]], subject: str
    ) -> None:
        self._spans: dict[int, tuple[Delivery[UsageEvent], Span]] = {}
        root = otel_context.Context()  # no traceparent: a trace of its own
        for delivery in deliveries:
            event = delivery.event
            request_id = event.request_id if event is not None else delivery.msg_id or ""
            span = tracer.start_span(
                "usage process",
                context=extract_context(delivery.headers) or root,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": subject,
                    "messaging.message.id": delivery.msg_id or "",
                    "messaging.batch.message_count": len(deliveries),
                    "oneapi.request_id": request_id,
                    "oneapi.quota": event.quota if event is not None else 0,
                },
            )
            self._spans[id(delivery)] = (delivery, span)

    def links(self) -> list[Link]:
        return [Link(span.get_span_context()) for _, span in self._spans.values()]

    def dead_letter(self, delivery: Delivery[UsageEvent], kind: str, reason: str) -> None:
        entry = self._spans.pop(id(delivery), None)
        if entry is not None:
            span = entry[1]
            span.set_attribute("oneapi.billing.outcome", "dead_letter")
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, reason[:200]))
            span.end()

    def settled(self, outcome: BatchOutcome) -> None:
        later = {id(delivery) for delivery in outcome.later}
        for key, (delivery, span) in list(self._spans.items()):
            event = delivery.event
            if event is None:
                continue
            if key in later:
                what = "redeliver"  # charged; its log is owed to the logs database
            elif event.request_id in outcome.charged_ids:
                what = "charged"
            else:
                what = "duplicate"
            span.set_attribute("oneapi.billing.outcome", what)
            span.end()
            del self._spans[key]

    def end(self) -> None:
        """End the spans of messages not settled (abandoned while stopping, or failed)."""
        for _, span in self._spans.values():
            span.set_attribute("oneapi.billing.outcome", "abandoned")
            span.end()
        self._spans.clear()


def _backoff(attempt: int) -> float:
    return float(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempt, 10)))


def _short(exc: BaseException) -> str:
    """One line naming the error, without parameters (which could hold user text)."""
    text = str(getattr(exc, "orig", None) or exc).splitlines()
    first = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
