"""One schedule for every health replica: a lease in NATS KV, and round claims.

*Lease* (bucket ``health_lease``, TTL = `HEALTH_LEASE_SECONDS`, key ``scheduler``): the
replica that creates the key (create-if-absent) holds the lease and rewrites it every third of
the TTL, each time compare-and-set on the revision it wrote last. A holder that dies stops
rewriting; the server drops the key when it is a TTL old, and the next replica's create
succeeds. A replica considers itself the holder only for two thirds of the TTL after its last
successful write, so two replicas never both believe they hold it (short of a clock running a
third slow). Stopping deletes the key (compare-and-set) so another replica takes over at once.

*Round claims* (bucket ``health_schedule``, no TTL, one key per job): the holder starts a round
only when the job's last round started a period ago or more, and only after moving the job's
key from the revision it read to "started now" (compare-and-set). So a round runs once per
period across replicas even when the lease changes hands (the new holder keeps the period of
the old one) or two replicas briefly overlap: the second claim fails. A round stops starting
channels once its replica no longer holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import nats.errors
import nats.js.errors
import orjson
from nats.js.kv import KeyValue

from libs.common.bus import Bus, BusError
from services.health.metrics import HealthMetrics

logger = logging.getLogger(__name__)

LEASE_BUCKET: Final = "health_lease"
LEASE_KEY: Final = "scheduler"
SCHEDULE_BUCKET: Final = "health_schedule"
HELD_FRACTION: Final = 2 / 3
"""How much of the TTL after a successful write this replica trusts that it holds the lease."""
RETRY_SECONDS: Final = 1.0

# NATS failures of a KV operation: the state of the lease is unknown until the next attempt.
_KV_ERRORS: Final = (nats.errors.Error, BusError, TimeoutError, OSError)

Round = Callable[[Callable[[], bool]], Awaitable[None]]
"""A scheduled round; it gets a check that says whether it may still start work."""


class Lease:
    """Whether this replica runs the schedule; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        *,
        ttl: float,
        holder: str,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._bus = bus
        self._ttl = float(ttl)
        self._holder = holder.encode()
        self._on_change = on_change
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._valid_until = 0.0
        self._held_event = asyncio.Event()
        self._was_held = False

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def interval(self) -> float:
        """Seconds between renewals (and between attempts to take the lease)."""
        return self._ttl / 3

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def open(self) -> None:
        """Open (or create) the bucket; a bucket made with another TTL keeps its own."""
        self._kv = await self._bus.key_value(LEASE_BUCKET, ttl=self._ttl)
        with contextlib.suppress(*_KV_ERRORS):
            status = await self._kv.status()
            if status.ttl:
                self._ttl = float(status.ttl)

    async def run(self) -> None:
        """Take or renew the lease every `interval` seconds, forever."""
        while True:
            await self.attempt()
            await asyncio.sleep(self.interval)

    async def attempt(self) -> bool:
        """One renewal (or, without the lease, one attempt to take it); returns `held`."""
        assert self._kv is not None, "open() first"
        started = time.monotonic()
        try:
            if self._revision is not None:
                try:
                    self._revision = await self._kv.update(
                        LEASE_KEY, self._holder, last=self._revision
                    )
                except nats.js.errors.KeyWrongLastSequenceError:
                    self._revision = None  # it aged out, or another replica took it
            if self._revision is None:
                with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                    self._revision = await self._kv.create(LEASE_KEY, self._holder)
        except _KV_ERRORS as exc:
            logger.warning("cannot renew the schedule lease: %s", type(exc).__name__)
        else:
            self._valid_until = (
                started + self._ttl * HELD_FRACTION if self._revision is not None else 0.0
            )
        self._publish_state()
        return self.held

    async def wait_held(self, timeout: float) -> None:  # noqa: ASYNC109 - a polling bound
        """Return once this replica holds the lease, or after `timeout` seconds."""
        if not self.held:
            self._held_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._held_event.wait(), timeout)

    async def release(self) -> None:
        """Give the lease up (if held) so another replica takes over without waiting."""
        revision, self._revision = self._revision, None
        self._valid_until = 0.0
        self._publish_state()
        if self._kv is None or revision is None:
            return
        with contextlib.suppress(*_KV_ERRORS):
            await self._kv.delete(LEASE_KEY, last=revision)

    def _publish_state(self) -> None:
        held = self.held
        if held:
            self._held_event.set()
        if held != self._was_held:
            self._was_held = held
            logger.info("%s the schedule lease", "took" if held else "lost")
            if self._on_change is not None:
                self._on_change(held)


class Scheduler:
    """Runs each job's rounds on the lease holder, once per period across replicas."""

    def __init__(self, bus: Bus, lease: Lease, metrics: HealthMetrics, *, holder: str) -> None:
        self._bus = bus
        self._lease = lease
        self._metrics = metrics
        self._holder = holder
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        self._kv = await self._bus.key_value(SCHEDULE_BUCKET)

    async def last_started(self, job: str) -> tuple[float | None, int | None]:
        """When the job's last round started (Unix seconds) and the key's revision."""
        assert self._kv is not None, "open() first"
        try:
            entry = await self._kv.get(job)
        except nats.js.errors.KeyNotFoundError:
            return None, None
        try:
            started = float(orjson.loads(entry.value or b"{}")["started"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            started = 0.0  # unreadable: treat the round as due
        return started, entry.revision

    async def claim(self, job: str, revision: int | None, now: float) -> bool:
        """Record that a round of `job` starts `now`, if nobody did since `revision`."""
        assert self._kv is not None, "open() first"
        value = orjson.dumps({"started": now, "by": self._holder})
        try:
            if revision is None:
                await self._kv.create(job, value)
            else:
                await self._kv.update(job, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def run(self, job: str, period: float, round_: Round) -> None:
        """Forever: while holding the lease, start a round of `job` whenever one is due.

        The first holder ever records "now" without running: the first round comes one
        period after the first start, as in One API.
        """
        while True:
            if not self._lease.held:
                await self._lease.wait_held(self._lease.interval)
                continue
            try:
                started, revision = await self.last_started(job)
                now = time.time()
                if started is None:
                    await self.claim(job, None, now)
                    continue
                due_in = started + period - now
                if due_in > 0:
                    await asyncio.sleep(min(due_in, self._lease.interval))
                    continue
                if not await self.claim(job, revision, now):
                    continue
            except _KV_ERRORS as exc:
                logger.warning("cannot read the %s schedule: %s", job, type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._metrics.rounds.labels(job).inc()
            try:
                await round_(lambda: self._lease.held)
            except Exception:
                logger.exception("a scheduled %s round failed", job)
