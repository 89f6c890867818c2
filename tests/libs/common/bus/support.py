"""Helpers of the bus tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from libs.common.bus import Bus

BusFactory = Callable[[], Awaitable[Bus]]


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 5.0, message: str = "condition"
) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.01)
