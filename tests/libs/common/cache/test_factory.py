"""cache_from_settings: One API's REDIS_* variables pick the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from libs.common.cache import (
    Cache,
    CacheConfigError,
    InProcessCache,
    RedisCache,
    RedisTarget,
    cache_from_settings,
    parse_redis_target,
)
from libs.common.settings import load_settings


@pytest.fixture
async def build() -> AsyncIterator[Callable[..., Cache]]:
    """Builds a cache from settings overrides; closes every cache it built."""
    built: list[Cache] = []

    def make(**overrides: object) -> Cache:
        defaults: dict[str, object] = {
            "redis_conn_string": "",
            "redis_password": "",
            "redis_master_name": "",
            "nats_namespace": "",
        }
        cache = cache_from_settings(load_settings(**{**defaults, **overrides}))
        built.append(cache)
        return cache

    yield make
    for cache in built:
        await cache.close()


def standalone(cache: Cache) -> Redis:
    """The client of a Redis cache that is not a cluster."""
    assert isinstance(cache, RedisCache)
    assert isinstance(cache.client, Redis)
    return cache.client


def test_no_conn_string_means_the_in_process_cache(build: Callable[..., Cache]) -> None:
    assert isinstance(build(), InProcessCache)
    assert parse_redis_target("  ") is None


async def test_a_redis_url_means_a_working_standalone_cache(
    build: Callable[..., Cache], redis_url: str
) -> None:
    cache = build(redis_conn_string=redis_url)

    assert isinstance(cache, RedisCache)
    assert type(cache.client) is Redis
    await cache.set("k", b"v")
    assert await cache.client.get("oneapi:k") == b"v"


async def test_the_namespace_is_part_of_the_redis_prefix(
    build: Callable[..., Cache], redis_url: str
) -> None:
    cache = build(redis_conn_string=redis_url, nats_namespace="staging")

    assert isinstance(cache, RedisCache)
    await cache.set("k", b"v")
    assert await cache.client.get("oneapi:staging:k") == b"v"


@pytest.mark.parametrize(
    ("conn_string", "connection_class"),
    [
        ("rediss://cache.example:6380/2", "SSLConnection"),
        ("unix:///run/redis.sock", "UnixDomainSocketConnection"),
        ("REDIS://cache.example", "Connection"),
    ],
)
def test_every_url_scheme_is_standalone(
    build: Callable[..., Cache], conn_string: str, connection_class: str
) -> None:
    cache = build(redis_conn_string=conn_string, redis_master_name="ignored-for-urls")

    client = standalone(cache)
    assert client.connection_pool.connection_class.__name__ == connection_class


def test_redis_password_fills_in_a_url_without_one(build: Callable[..., Cache]) -> None:
    without = build(redis_conn_string="redis://cache.example:6379/0", redis_password="pw")
    within = build(redis_conn_string="redis://:urlpw@cache.example:6379/0", redis_password="pw")

    assert standalone(without).connection_pool.connection_kwargs["password"] == "pw"
    assert standalone(within).connection_pool.connection_kwargs["password"] == "urlpw"


def test_a_node_list_with_a_master_name_means_sentinel(build: Callable[..., Cache]) -> None:
    cache = build(
        redis_conn_string="sentinel-1:26380, sentinel-2 ,",
        redis_master_name="mymaster",
        redis_password="masterpw",
    )

    pool = standalone(cache).connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    sentinels = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ]
    assert sentinels == [("sentinel-1", 26380), ("sentinel-2", 26379)]
    assert pool.connection_kwargs["password"] == "masterpw"


def test_a_node_list_without_a_master_name_means_cluster(build: Callable[..., Cache]) -> None:
    cache = build(redis_conn_string="node-1:7000,node-2:7001,[::1]", redis_password="pw")

    assert isinstance(cache, RedisCache)
    assert isinstance(cache.client, RedisCluster)
    assert cache.is_cluster
    assert list(cache.client.nodes_manager.startup_nodes) == [
        "node-1:7000",
        "node-2:7001",
        "::1:6379",
    ]
    assert cache.client.connection_kwargs["password"] == "pw"


def test_one_node_without_a_master_name_is_a_cluster_seed() -> None:
    target = parse_redis_target("node-1:7000")

    assert target == RedisTarget("cluster", nodes=(("node-1", 7000),))


@pytest.mark.parametrize(
    "conn_string",
    [
        "node-1:port",
        "node-1:0",
        "node-1:70000",
        "node-1:7000,redis://node-2:7001",
        "user:hunter2@node-1:7000",
        ":7000",
        " , ",
    ],
)
def test_a_conn_string_that_makes_no_sense_is_refused_without_secrets(conn_string: str) -> None:
    with pytest.raises(CacheConfigError) as caught:
        parse_redis_target(conn_string, password="pw")

    assert "REDIS_CONN_STRING" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_broken_url_is_refused_without_its_password(build: Callable[..., Cache]) -> None:
    with pytest.raises(CacheConfigError) as caught:
        build(redis_conn_string="redis://user:hunter2@cache.example:port/0")

    assert "hunter2" not in str(caught.value)


def test_the_target_never_shows_passwords() -> None:
    target = parse_redis_target("redis://:hunter2@h:1/0", password="hunter3")

    assert target is not None
    assert "hunter" not in repr(target)
