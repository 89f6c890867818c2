"""The cache interface every implementation keeps, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class CacheError(Exception):
    """Base of the cache errors: the cache refused the operation (e.g. INCRBY on text)."""


class CacheUnavailable(CacheError):
    """The cache server cannot be reached now; a retry may succeed."""


class CacheConfigError(CacheError):
    """REDIS_CONN_STRING (or its companions) cannot be understood."""


@runtime_checkable
class Cache(Protocol):
    """A small key-value cache with expiry, counters and a rate-limit primitive.

    Keys are strings, values bytes. Both implementations (`InProcessCache`, `RedisCache`)
    behave the same; only Redis is shared between processes.
    """

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value`; it expires after `ttl` seconds (> 0), or never when None."""
        ...

    async def delete(self, *keys: str) -> int:
        """Remove `keys`; returns how many existed."""
        ...

    async def incrby(self, key: str, amount: int = 1) -> int:
        """Add `amount` to the integer at `key` (absent: 0) and return the new value.

        An expiry already on the key is kept. Raises CacheError when the value is not an
        integer.
        """
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, in order, None for each absent one."""
        ...

    async def hit(self, key: str, window_seconds: float) -> int:
        """Count one hit on `key` and return the hits in the current window, this one included.

        The window starts at the first hit and lasts `window_seconds`; the next hit after it
        starts a new window at 1. Atomic: concurrent hits are each counted once.
        """
        ...

    async def close(self) -> None:
        """Release connections; the cache is not used afterwards."""
        ...


def check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive seconds or None, got {ttl!r}")


def check_window(window_seconds: float) -> None:
    if not window_seconds > 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds!r}")
