"""The schedule lease and the round claims, on a real NATS KV."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from services.health.metrics import HealthMetrics
from services.health.scheduler import Lease, Scheduler
from tests.services.health.support import eventually


@pytest.fixture
async def buses(nats_url: str, nats_namespace: str) -> AsyncIterator[list[Bus]]:
    opened = [await Bus.connect(nats_url, namespace=nats_namespace) for _ in range(2)]
    yield opened
    for bus in opened:
        await bus.close()


async def test_one_holder_at_a_time_and_release_hands_over_at_once(buses: list[Bus]) -> None:
    changes: list[bool] = []
    first = Lease(buses[0], ttl=5, holder="a", on_change=changes.append)
    second = Lease(buses[1], ttl=5, holder="b")
    await first.open()
    await second.open()
    assert await first.attempt()
    assert not await second.attempt()
    assert await first.attempt()  # renewing keeps it
    assert not await second.attempt()
    await first.release()
    assert not first.held
    assert await second.attempt()
    assert not await first.attempt()
    assert changes == [True, False]


async def test_a_holder_that_stops_renewing_loses_the_lease_after_its_ttl(
    buses: list[Bus],
) -> None:
    dead = Lease(buses[0], ttl=1, holder="dead")
    alive = Lease(buses[1], ttl=1, holder="alive")
    await dead.open()
    await alive.open()
    assert await dead.attempt()
    taken = time.monotonic()
    await eventually(alive.attempt, timeout=5, what="the lease to age out")
    assert time.monotonic() - taken >= 0.9
    assert not dead.held  # it trusts its lease for two thirds of the TTL only
    assert not await dead.attempt()  # its revision is gone: it cannot renew


async def test_a_round_is_claimed_once_however_many_try(buses: list[Bus]) -> None:
    metrics = HealthMetrics(CollectorRegistry())
    leases = [Lease(bus, ttl=5, holder=f"h{i}") for i, bus in enumerate(buses)]
    schedulers = [
        Scheduler(bus, lease, metrics, holder=f"h{i}")
        for i, (bus, lease) in enumerate(zip(buses, leases, strict=True))
    ]
    for scheduler in schedulers:
        await scheduler.open()
    assert await schedulers[0].last_started("test") == (None, None)
    assert await schedulers[0].claim("test", None, 100.0)
    started, revision = await schedulers[1].last_started("test")
    assert started == 100.0
    claims = await asyncio.gather(
        *(scheduler.claim("test", revision, 200.0) for scheduler in schedulers)
    )
    assert sorted(claims) == [False, True]
    assert (await schedulers[0].last_started("test"))[0] == 200.0
    assert not await schedulers[1].claim("test", None, 300.0)  # exists: not created again
