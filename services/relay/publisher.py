"""Publishing the relay's events without ever making a response wait for NATS.

    publisher = UsagePublisher(bus, registry=ctx.metrics, spill_dir=settings.data_dir / "relay")
    await publisher.start()
    publisher.submit_usage(usage)        # plain functions: they return at once, never await
    publisher.submit_outcome(outcome)
    left = await publisher.stop(timeout=10)   # SIGTERM path: flush, bounded by the timeout

A background task publishes what was submitted, in submission order:

- usage events with ``bus.publish_durable(event, msg_id=event.request_id)``: JetStream stores
  them, and drops a repeated message id within the stream's duplicate window. An event leaves
  the buffer only once NATS acknowledged it; until then it is retried with backoff
  (`retry_initial` doubling to `retry_max` seconds), always with the same id. Up to `window`
  publishes are in flight at once; a failed one stays at the head of the buffer, in order,
  while later ones of its window may already be stored (billing does not depend on order).
- relay outcomes with ``bus.publish`` (core NATS, best effort): one attempt; a failure drops
  the outcome (counted).

The buffer is bounded (`capacity` events of both kinds together). When it is full:

- an outcome is dropped (counted);
- a usage event first evicts the oldest buffered outcome, if any;
- a buffer full of usage events spills new usage events to a file under `spill_dir` (one
  JSON line each; from then on every new usage event goes to the file, behind the spilled
  ones, until the task has published the file back and deleted it). Decision: usage is
  money, so it is never dropped while a disk can take it, and admission does not depend on
  NATS (refusing requests while NATS is away would turn a billing delay into an outage).
  Only when `spill_dir` is None, or writing fails, is the new usage event dropped: counted
  in ``oneapi_relay_publish_dropped_total{kind="usage"}`` and logged as an error (keeping
  the oldest). The relay should pass ``DATA_DIR``; on Kubernetes that needs a volume that
  outlives the container.

Confirmation: ``submit_usage(event, confirm=True)`` also returns a future that turns True
once JetStream acknowledged the event, so the relay can end a response only after its usage
is stored (a relay SIGKILLed after answering then has lost no billed request). It returns
None instead while publishing is failing or events are on disk (NATS away or behind): then
nobody waits, as before. The future turns False when the event leaves memory unpublished
(stop). Waiting is the caller's choice and bounded by the caller.

`stop(timeout)` publishes everything buffered and spilled before returning. What is left
when the timeout passes is written to a spill file (with `spill_dir`), which the next
`start()` in the same directory publishes first (files locked by a live process are left to
it); without `spill_dir` it is lost, and logged. After a crash the spill file still holds
every spilled event: republishing one that was already stored is harmless (JetStream's
duplicate window, then billing's idempotency by request id). Events only in memory die with
the process.

Metrics (on the given registry; none when it is None):
``oneapi_relay_publish_buffered{kind}`` events in memory, ``oneapi_relay_publish_on_disk``
usage events in spill files, ``oneapi_relay_published_total{kind}`` acknowledged,
``oneapi_relay_publish_retries_total{kind}`` failed attempts retried,
``oneapi_relay_publish_dropped_total{kind}`` given up, ``oneapi_relay_publish_spilled_total``
usage events written to disk, ``oneapi_relay_usage_unconfirmed_total`` responses that ended
before their usage was stored (counted by the relay when its wait runs out).

Tracing (with a `tracer`): `submit_usage` remembers the submitter's trace context (the
request's span) by request id; the publish then runs in a ``usage publish`` producer span,
a child of it, and the bus stores that span's ``traceparent`` with the message, so billing's
span for the message joins the request's trace. Without a tracer none of this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import random
import time
from collections import deque
from pathlib import Path
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.common.bus import Bus, BusError, BusUnavailable
from libs.common.events import USAGE, EventDecodeError, RelayOutcome, UsageEvent, decode, encode

logger = logging.getLogger(__name__)

SPILL_GLOB: Final = "usage-*.jsonl"
_READ_CHUNK: Final = 1 << 20
_LOG_EVERY_SECONDS: Final = 10.0


class _Throttle:
    """True at most once per `interval` seconds: errors that repeat per event log rarely."""

    def __init__(self, interval: float = _LOG_EVERY_SECONDS) -> None:
        self._interval = interval
        self._next = 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        return True


class _SpillFile:
    """A file of usage events, one JSON line each, locked by this process while it is used.

    Written by `append` (the file this process spills to) and read back from `read_offset`.
    """

    def __init__(self, path: Path, fd: int, *, writable: bool) -> None:
        self.path = path
        self._fd = fd
        self.writable = writable
        self.read_offset = 0
        self.size = os.fstat(fd).st_size
        self.unread = 0

    @classmethod
    def create(cls, directory: Path) -> _SpillFile:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"usage-{time.time_ns()}-{os.getpid()}.jsonl"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, fd, writable=True)

    @classmethod
    def claim(cls, path: Path) -> _SpillFile | None:
        """Open a file left by an earlier process; None when a live process holds it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        spill = cls(path, fd, writable=False)
        spill.unread = spill.remainder().count(b"\n")
        return spill

    def append(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(line)
        self.unread += 1

    @property
    def exhausted(self) -> bool:
        return self.read_offset >= self.size

    def read_lines(self, limit: int) -> list[bytes]:
        """Up to `limit` whole lines from `read_offset`; a torn last line of a file left by a
        crash is skipped (logged)."""
        lines: list[bytes] = []
        while len(lines) < limit and not self.exhausted:
            data = os.pread(
                self._fd, min(_READ_CHUNK, self.size - self.read_offset), self.read_offset
            )
            end = data.rfind(b"\n")
            if end < 0:
                if self.read_offset + len(data) < self.size:  # one line longer than a chunk
                    data = os.pread(self._fd, self.size - self.read_offset, self.read_offset)
                    end = data.find(b"\n")
                if end < 0:
                    logger.error("skipped a torn line at the end of %s", self.path)
                    self.read_offset = self.size
                    break
            for line in data[: end + 1].splitlines(keepends=True):
                if len(lines) == limit:
                    break
                lines.append(line)
                self.read_offset += len(line)
                self.unread = max(0, self.unread - 1)
        return lines

    def remainder(self) -> bytes:
        """The bytes not read yet."""
        return os.pread(self._fd, self.size - self.read_offset, self.read_offset)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()


class UsagePublisher:
    """Buffers the relay's events and publishes them in the background; see the module doc."""

    def __init__(
        self,
        bus: Bus,
        *,
        capacity: int = 10_000,
        registry: CollectorRegistry | None = None,
        spill_dir: Path | str | None = None,
        window: int = 32,
        publish_timeout: float = 5.0,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        if capacity < 1 or window < 1:
            raise ValueError("capacity and window must be at least 1")
        self._bus = bus
        self._capacity = capacity
        self._spill_dir = Path(spill_dir) if spill_dir is not None else None
        self._window = window
        self._publish_timeout = publish_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._usage: deque[UsageEvent] = deque()
        self._outcomes: deque[RelayOutcome] = deque()
        # Spill files to publish back, oldest first; `_writer`, when set, is the last one.
        self._sources: deque[_SpillFile] = deque()
        self._writer: _SpillFile | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = False
        self._failing = False
        self._lost = 0
        self._drop_log = _Throttle()
        self._retry_log = _Throttle()
        self._tracer = tracer
        # request id -> the trace context it was submitted in (tracing only; bounded).
        self._parents: dict[str, otel_context.Context] = {}
        # request id -> resolved when JetStream acknowledged it (submit_usage(confirm=True)).
        self._confirmations: dict[str, asyncio.Future[bool]] = {}

        self.buffered = Gauge(
            "oneapi_relay_publish_buffered",
            "Events waiting in memory to be published",
            ["kind"],
            registry=registry,
        )
        self.buffered.labels("usage").set_function(lambda: len(self._usage))
        self.buffered.labels("outcome").set_function(lambda: len(self._outcomes))
        self.on_disk = Gauge(
            "oneapi_relay_publish_on_disk",
            "Usage events waiting in spill files to be published",
            registry=registry,
        )
        self.on_disk.set_function(lambda: sum(source.unread for source in self._sources))
        self.published = Counter(
            "oneapi_relay_published", "Events NATS acknowledged", ["kind"], registry=registry
        )
        self.retries = Counter(
            "oneapi_relay_publish_retries",
            "Publish attempts that failed and will be retried",
            ["kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "oneapi_relay_publish_dropped",
            "Events given up: buffer full, or a best-effort publish failed",
            ["kind"],
            registry=registry,
        )
        self.spilled = Counter(
            "oneapi_relay_publish_spilled",
            "Usage events written to a spill file because the buffer was full",
            registry=registry,
        )
        self.unconfirmed = Counter(
            "oneapi_relay_usage_unconfirmed",
            "Responses that ended before JetStream stored their usage (NATS slow or away)",
            registry=registry,
        )

    # --- the request path: never awaits ---------------------------------------------------

    def submit_usage(
        self, event: UsageEvent, *, confirm: bool = False
    ) -> asyncio.Future[bool] | None:
        """Queue a usage event for JetStream; returns at once.

        With `confirm`, returns a future that turns True once JetStream stored the event,
        or None when publishing is failing or behind (nobody should wait then).
        """
        if self._tracer is not None and len(self._parents) < self._capacity:
            self._parents[event.request_id] = otel_context.get_current()
        if self._writer is not None or self._stopped:
            # Spilling (keep order: behind the spilled events), or stopped (for the next start).
            self._spill(event)
            return None
        if len(self._usage) + len(self._outcomes) >= self._capacity:
            if not self._outcomes:
                self._spill(event)
                return None
            self._outcomes.popleft()
            self.dropped.labels("outcome").inc()
        self._usage.append(event)
        self._wake.set()
        if not confirm or self._failing or self._sources:
            return None
        stored = asyncio.get_running_loop().create_future()
        self._confirmations[event.request_id] = stored
        return stored

    def submit_outcome(self, event: RelayOutcome) -> None:
        """Queue a relay outcome for core NATS (best effort); returns at once."""
        if self._stopped or len(self._usage) + len(self._outcomes) >= self._capacity:
            self.dropped.labels("outcome").inc()
            return
        self._outcomes.append(event)
        self._wake.set()

    @property
    def pending_usage(self) -> int:
        """Usage events not acknowledged yet: in memory and in spill files."""
        return len(self._usage) + sum(source.unread for source in self._sources)

    def _spill(self, event: UsageEvent) -> None:
        if self._spill_dir is not None:
            try:
                if self._writer is None:
                    self._writer = _SpillFile.create(self._spill_dir)
                    self._sources.append(self._writer)
                    logger.warning(
                        "usage buffer full (%d events): spilling to %s",
                        self._capacity,
                        self._writer.path,
                    )
                self._writer.append(encode(event) + b"\n")
            except OSError as exc:
                self._drop_usage(event, f"spill file failed: {exc}")
                return
            self.spilled.inc()
            self._wake.set()
            return
        self._drop_usage(event, "buffer full and no spill directory")

    def _drop_usage(self, event: UsageEvent, reason: str) -> None:
        self._parents.pop(event.request_id, None)
        self.dropped.labels("usage").inc()
        self._lost += 1
        if self._drop_log.ready():
            logger.error(
                "usage event %s LOST (%s); %d usage events lost so far",
                event.request_id,
                reason,
                self._lost,
            )

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start publishing; first claims spill files earlier processes left in `spill_dir`."""
        if self._task is not None:
            return
        self._stopping = self._stopped = False
        if self._spill_dir is not None and self._spill_dir.is_dir():
            for path in sorted(self._spill_dir.glob(SPILL_GLOB)):
                claimed = _SpillFile.claim(path)
                if claimed is not None:
                    logger.info("publishing %d usage events left in %s", claimed.unread, path)
                    # Older than anything submitted since: before this process's own file.
                    if self._writer is not None:
                        self._sources.insert(len(self._sources) - 1, claimed)
                    else:
                        self._sources.append(claimed)
        self._task = asyncio.create_task(self._run(), name="relay-usage-publisher")

    async def stop(self, timeout: float = 10.0) -> int:  # noqa: ASYNC109 - a flush budget
        """Publish everything buffered, for at most `timeout` seconds; return how many usage
        events are left unpublished (saved to a spill file when `spill_dir` is set)."""
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stopped = True
        if self._outcomes:
            logger.warning("dropped %d relay outcomes at shutdown", len(self._outcomes))
            self.dropped.labels("outcome").inc(len(self._outcomes))
            self._outcomes.clear()
        left = self.pending_usage
        if left:
            self._save_leftovers(left)
        for waiting in self._confirmations.values():
            if not waiting.done():
                waiting.set_result(False)  # left memory unpublished (saved to disk, or lost)
        self._confirmations.clear()
        return left

    def _save_leftovers(self, left: int) -> None:
        sources = list(self._sources)
        if self._spill_dir is None:
            logger.error("stopped with %d usage events unpublished: LOST", left)
        else:
            try:
                path = self._write_leftovers(self._spill_dir, sources)
            except OSError as exc:
                logger.error("stopped with %d usage events unpublished: LOST (%s)", left, exc)
            else:
                logger.warning("stopped with %d usage events unpublished; saved to %s", left, path)
                for source in sources:
                    source.delete()
                sources = []
        for source in sources:
            source.close()
        self._sources.clear()
        self._writer = None
        self._usage.clear()
        self._parents.clear()

    def _write_leftovers(self, directory: Path, sources: list[_SpillFile]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"usage-{time.time_ns()}-{os.getpid()}.jsonl"
        temporary = directory / f".{name}.tmp"
        with temporary.open("wb") as out:
            for event in self._usage:
                out.write(encode(event) + b"\n")
            for source in sources:
                out.write(source.remainder())
            out.flush()
            os.fsync(out.fileno())
        final = directory / name
        temporary.replace(final)
        return final

    # --- the background task ------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            try:
                if self._outcomes:
                    await self._publish_outcomes()
                if not self._usage:
                    self._refill()
                published = await self._publish_usage() if self._usage else None
            except Exception:
                # Never die: a dead task would hold every later usage event. What failed
                # is still buffered and is retried.
                logger.exception("usage publisher failed; retrying")
                published = False
            if published is not None:
                if published:
                    delay = self._retry_initial
                else:
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(self._retry_max, delay * 2)
                continue
            if self._outcomes:
                continue
            if self._stopping:
                return
            self._wake.clear()
            await self._wake.wait()

    def _refill(self) -> None:
        """Load the next usage events from the spill files (only when memory holds none, so
        every event loaded earlier is acknowledged before a file is deleted)."""
        while self._sources:
            source = self._sources[0]
            lines = source.read_lines(self._window)
            if lines:
                for line in lines:
                    try:
                        self._usage.append(decode(line, UsageEvent))
                    except EventDecodeError as exc:
                        logger.error("skipped an unreadable line of %s: %s", source.path, exc)
                        self.dropped.labels("usage").inc()
                if self._usage:
                    return
                continue
            self._sources.popleft()
            if source is self._writer:
                self._writer = None  # from now on new events go to memory again
            source.delete()

    async def _publish_usage(self) -> bool:
        """Publish the head of the buffer; False when some of it must be retried."""
        batch = list(itertools.islice(self._usage, self._window))
        results = await asyncio.gather(*(self._publish_one(event) for event in batch))
        # Only this task removes events, and submit only appends: the head is still `batch`.
        for _ in batch:
            self._usage.popleft()
        failed = [event for event, ok in zip(batch, results, strict=True) if not ok]
        self._usage.extendleft(reversed(failed))
        if failed:
            self.retries.labels("usage").inc(len(failed))
            self._failing = True
            return False
        if self._failing:
            self._failing = False
            logger.info("usage publishing recovered")
        return True

    async def _publish_one(self, event: UsageEvent) -> bool:
        parent = self._parents.get(event.request_id) if self._tracer is not None else None
        if parent is None or self._tracer is None:
            return await self._publish_plain(event)
        with self._tracer.start_as_current_span(
            "usage publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.destination.name": self._bus.namespace.subject(USAGE),
                "messaging.message.id": event.request_id,
                "oneapi.request_id": event.request_id,
                "oneapi.quota": event.quota,
            },
        ) as span:
            published = await self._publish_plain(event)
            if published:
                del self._parents[event.request_id]
            else:
                span.set_status(Status(StatusCode.ERROR, "not acknowledged; retried"))
        return published

    async def _publish_plain(self, event: UsageEvent) -> bool:
        try:
            await self._bus.publish_durable(
                event, msg_id=event.request_id, timeout=self._publish_timeout
            )
        except BusUnavailable as exc:
            if self._retry_log.ready():
                logger.warning(
                    "NATS unavailable, %d usage events waiting: %s", self.pending_usage, exc
                )
            return False
        except BusError as exc:
            if self._retry_log.ready():
                logger.error("NATS refused usage event %s (retrying): %s", event.request_id, exc)
            return False
        self.published.labels("usage").inc()
        if self._confirmations:
            # Its own ack, not the window's last: the answer waiting for it ends now.
            waiting = self._confirmations.pop(event.request_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(True)
        return True

    async def _publish_outcomes(self) -> None:
        while self._outcomes:
            event = self._outcomes.popleft()
            try:
                await self._bus.publish(event)
            except BusError:
                self.dropped.labels("outcome").inc()
            else:
                self.published.labels("outcome").inc()
