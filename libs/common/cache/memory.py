"""The cache of a single process: a bounded LRU dictionary with expiry."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from libs.common.cache.base import CacheError, check_ttl, check_window

_INTEGER_RE: Final = re.compile(rb"-?[0-9]+")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


class InProcessCache:
    """`Cache` in this process's memory, for the embedded mode (no REDIS_CONN_STRING).

    Holds at most `max_entries` keys: inserting past that evicts the least recently used.
    Expired keys are dropped when touched, or evicted like any other. Counters behave like
    Redis's (decimal bytes, 64-bit, expiry kept on increment). Thread-safe.
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (value, monotonic expiry or None)
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._get(key, self._clock())

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        with self._lock:
            now = self._clock()
            self._put(key, bytes(value), None if ttl is None else now + ttl)

    async def delete(self, *keys: str) -> int:
        with self._lock:
            now = self._clock()
            removed = 0
            for key in keys:
                if self._get(key, now) is not None:
                    removed += 1
                self._entries.pop(key, None)
            return removed

    async def incrby(self, key: str, amount: int = 1) -> int:
        with self._lock:
            return self._incrby(key, amount, self._clock(), new_expiry=None)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            now = self._clock()
            return [self._get(key, now) for key in keys]

    async def hit(self, key: str, window_seconds: float) -> int:
        check_window(window_seconds)
        with self._lock:
            now = self._clock()
            return self._incrby(key, 1, now, new_expiry=now + window_seconds)

    async def close(self) -> None:
        with self._lock:
            self._entries.clear()

    # --- under the lock ---------------------------------------------------------------------

    def _get(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _put(self, key: str, value: bytes, expires_at: float | None) -> None:
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _incrby(self, key: str, amount: int, now: float, *, new_expiry: float | None) -> int:
        """Add to the counter at `key`; `new_expiry` applies when the key has no expiry yet."""
        current = self._get(key, now)
        if current is None:
            total, expires_at = amount, new_expiry
        else:
            if _INTEGER_RE.fullmatch(current) is None:
                raise CacheError(f"value of {key!r} is not an integer")
            total, expires_at = int(current) + amount, self._entries[key][1]
            if expires_at is None:
                expires_at = new_expiry
        if not _INT64_MIN <= total <= _INT64_MAX:
            raise CacheError(f"increment of {key!r} would overflow a 64-bit integer")
        self._put(key, str(total).encode(), expires_at)
        return total
