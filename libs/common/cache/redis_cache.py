"""The cache shared by every process: Redis standalone, sentinel or cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from libs.common.cache.base import (
    CacheError,
    CacheUnavailable,
    check_ttl,
    check_window,
)

DEFAULT_PREFIX: Final = "oneapi:"

# INCR, and start the window on the first hit. PTTL < 0 also covers a key that lost its
# expiry (set by hand): it gets one instead of counting forever.
_HIT_SCRIPT: Final = """
local hits = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return hits
"""


class RedisCache:
    """`Cache` on Redis; every key is stored as `prefix` + key.

    `client` is the redis-py asyncio client (standalone, sentinel-managed or cluster), and
    `key(name)` gives a stored key: atomic scripts written later (quota reservation) use both.
    In cluster mode a script's keys must share a slot: put a hash tag in the name
    (``quota:{token:7}``); the prefix holds no braces, so it never changes the slot.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        also_close: Sequence[Callable[[], Awaitable[Any]]] = (),
    ) -> None:
        """`also_close`: extra closers (a sentinel manager's connections) run by `close`."""
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain a hash tag")
        self.client = client
        self.prefix = prefix
        self._also_close = tuple(also_close)
        self._hit = client.register_script(_HIT_SCRIPT)

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def key(self, name: str) -> str:
        """The key `name` is stored under."""
        return self.prefix + name

    async def get(self, key: str) -> bytes | None:
        async with _errors():
            return _as_bytes(await self.client.get(self.key(key)))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        milliseconds = None if ttl is None else max(1, round(ttl * 1000))
        async with _errors():
            await self.client.set(self.key(key), value, px=milliseconds)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        async with _errors():
            removed: int = await self.client.delete(*(self.key(key) for key in keys))
            return removed

    async def incrby(self, key: str, amount: int = 1) -> int:
        async with _errors():
            total: int = await self.client.incrby(self.key(key), amount)
            return total

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        stored = [self.key(key) for key in keys]
        async with _errors():
            if isinstance(self.client, RedisCluster):
                # Keys of several slots: one MGET per node, results in the asked order.
                values = await self.client.mget_nonatomic(stored)
            else:
                values = await self.client.mget(stored)
            return [_as_bytes(value) for value in values]

    async def hit(self, key: str, window_seconds: float) -> int:
        check_window(window_seconds)
        milliseconds = max(1, round(window_seconds * 1000))
        async with _errors():
            hits = await self._hit(keys=[self.key(key)], args=[milliseconds])
            return int(hits)

    async def close(self) -> None:
        try:
            await self.client.aclose()
        finally:
            for closer in self._also_close:
                await closer()


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # Our clients return bytes; one built with decode_responses=True would return str.
    return value.encode() if isinstance(value, str) else value


@asynccontextmanager
async def _errors() -> AsyncIterator[None]:
    """Turn redis-py's errors into the cache's: unreachable vs refused."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise CacheUnavailable(f"Redis unreachable: {type(exc).__name__}: {exc}") from None
    except redis.exceptions.RedisError as exc:
        raise CacheError(f"Redis refused: {exc}") from None
