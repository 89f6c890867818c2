"""Fixtures of the bus tests: connected buses in this test's own namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.common.bus import Bus
from tests.libs.common.bus.support import BusFactory


@pytest.fixture
async def connect_bus(nats_url: str, nats_namespace: str) -> AsyncIterator[BusFactory]:
    """Opens buses on the test NATS in this test's namespace; closes them after the test."""
    opened: list[Bus] = []

    async def connect() -> Bus:
        bus = await Bus.connect(nats_url, namespace=nats_namespace, connect_timeout=5)
        opened.append(bus)
        return bus

    yield connect
    for bus in opened:
        await bus.close()


@pytest.fixture
async def bus(connect_bus: BusFactory) -> Bus:
    return await connect_bus()
