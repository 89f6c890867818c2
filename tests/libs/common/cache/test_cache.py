"""Both caches, in-process and Redis, pass the same behaviour tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from libs.common.cache import (
    Cache,
    CacheError,
    CacheUnavailable,
    InProcessCache,
    RedisCache,
)


@pytest.fixture(params=["in-process", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "in-process":
        built: Cache = InProcessCache()
    else:
        url: str = request.getfixturevalue("redis_url")
        built = RedisCache(redis.asyncio.Redis.from_url(url))
    yield built
    await built.close()


async def eventually(
    probe: Callable[[], object], expected: object, *, timeout: float = 5.0
) -> None:
    """Await `probe()` until it returns `expected`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()  # type: ignore[misc]
        if value == expected:
            return
        assert time.monotonic() < deadline, f"still {value!r}, waited for {expected!r}"
        await asyncio.sleep(0.02)


def test_both_implementations_are_caches() -> None:
    assert isinstance(InProcessCache(), Cache)
    assert issubclass(RedisCache, Cache)


async def test_set_get_and_overwrite(cache: Cache) -> None:
    assert await cache.get("token:sk-1") is None

    await cache.set("token:sk-1", b'{"id": 1}')
    assert await cache.get("token:sk-1") == b'{"id": 1}'
    await cache.set("token:sk-1", b'{"id": 2}')
    assert await cache.get("token:sk-1") == b'{"id": 2}'


async def test_a_value_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", b"x", ttl=0.2)
    await cache.set("long", b"y", ttl=60)
    await cache.set("forever", b"z")

    await eventually(lambda: cache.get("short"), None)
    assert await cache.get("long") == b"y"
    assert await cache.get("forever") == b"z"


async def test_overwriting_without_ttl_removes_the_expiry(cache: Cache) -> None:
    await cache.set("k", b"1", ttl=0.2)
    await cache.set("k", b"2")
    await cache.set("marker", b"m", ttl=0.2)

    await eventually(lambda: cache.get("marker"), None)
    assert await cache.get("k") == b"2"


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_ttl_that_is_not_positive_is_refused(cache: Cache, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", b"v", ttl=ttl)


async def test_delete_removes_keys_and_counts_the_existing_ones(cache: Cache) -> None:
    await cache.set("a", b"1")
    await cache.set("b", b"2")

    assert await cache.delete("a", "b", "missing") == 2
    assert await cache.get_many(["a", "b"]) == [None, None]
    assert await cache.delete() == 0


async def test_incrby_counts_from_zero_and_keeps_the_expiry(cache: Cache) -> None:
    assert await cache.incrby("used") == 1
    assert await cache.incrby("used", 41) == 42
    assert await cache.incrby("used", -50) == -8
    assert await cache.get("used") == b"-8"

    await cache.set("budget", b"100", ttl=0.3)
    assert await cache.incrby("budget", 5) == 105
    await eventually(lambda: cache.get("budget"), None)


async def test_incrby_on_text_is_refused(cache: Cache) -> None:
    await cache.set("name", b"gpt-4o")

    with pytest.raises(CacheError):
        await cache.incrby("name", 1)
    assert await cache.get("name") == b"gpt-4o"


async def test_get_many_answers_in_order(cache: Cache) -> None:
    await cache.set("k1", b"v1")
    await cache.set("k3", b"v3")

    assert await cache.get_many(["k3", "k2", "k1"]) == [b"v3", None, b"v1"]
    assert await cache.get_many([]) == []


async def test_hit_counts_within_a_window_and_restarts_after_it(cache: Cache) -> None:
    assert [await cache.hit("ip:1.2.3.4", 30) for _ in range(3)] == [1, 2, 3]
    assert await cache.hit("ip:5.6.7.8", 30) == 1, "each key has its own window"

    assert await cache.hit("burst", 0.3) == 1
    # Hitting until the window is over: the count restarts at 1.
    await eventually(lambda: cache.hit("burst", 0.3), 1)


async def test_concurrent_hits_are_each_counted_once(cache: Cache) -> None:
    counts = await asyncio.gather(*(cache.hit("token:7", 30) for _ in range(50)))

    assert sorted(counts) == list(range(1, 51))


async def test_a_window_that_is_not_positive_is_refused(cache: Cache) -> None:
    with pytest.raises(ValueError, match="window"):
        await cache.hit("k", 0)


# --- in-process only ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_in_process_cache_evicts_the_least_recently_used_key() -> None:
    cache = InProcessCache(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode())
    await cache.get("a")  # now "b" is the least recently used

    await cache.set("d", b"d")

    assert await cache.get_many(["a", "b", "c", "d"]) == [b"a", None, b"c", b"d"]
    assert len(cache) == 3


async def test_in_process_cache_expiry_follows_its_clock() -> None:
    clock = FakeClock()
    cache = InProcessCache(clock=clock)
    await cache.set("k", b"v", ttl=10)
    assert await cache.hit("rate", 60) == 1

    clock.now += 9.9
    assert await cache.get("k") == b"v"
    assert await cache.hit("rate", 60) == 2
    clock.now += 0.1
    assert await cache.get("k") is None
    clock.now += 50
    assert await cache.hit("rate", 60) == 1


async def test_in_process_counters_stay_within_64_bits() -> None:
    cache = InProcessCache()
    await cache.set("n", str(2**63 - 1).encode())

    with pytest.raises(CacheError, match="overflow"):
        await cache.incrby("n", 1)


# --- Redis only --------------------------------------------------------------------------------


async def test_redis_keys_carry_the_prefix(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    cache = RedisCache(client, prefix="oneapi:ns1:")
    try:
        await cache.set("token:sk-1", b"v")

        assert await client.get("oneapi:ns1:token:sk-1") == b"v"
        assert cache.key("x") == "oneapi:ns1:x"
    finally:
        await cache.close()


async def test_a_hand_set_rate_key_without_expiry_gets_one(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    cache = RedisCache(client)
    try:
        await client.set("oneapi:rate", 5)

        assert await cache.hit("rate", 30) == 6
        assert 0 < await client.pttl("oneapi:rate") <= 30_000
    finally:
        await cache.close()


async def test_an_unreachable_redis_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    no_retries = Retry(NoBackoff(), retries=0)
    cache = RedisCache(redis.asyncio.Redis(host="127.0.0.1", port=port, retry=no_retries))
    try:
        with pytest.raises(CacheUnavailable):
            await cache.get("k")
    finally:
        await cache.close()
