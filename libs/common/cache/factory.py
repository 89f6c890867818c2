"""Choosing the cache from the settings, with One API's REDIS_* variables."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from libs.common.cache.base import Cache, CacheConfigError
from libs.common.cache.memory import InProcessCache
from libs.common.cache.redis_cache import DEFAULT_PREFIX, RedisCache

if TYPE_CHECKING:
    from libs.common.settings import Settings

logger = logging.getLogger(__name__)

URL_SCHEMES: Final = ("redis://", "rediss://", "unix://")
# A Redis that hangs must not hang requests: bounded waits (a URL may still set its own).
CONNECT_TIMEOUT: Final = 2.0
COMMAND_TIMEOUT: Final = 5.0
DEFAULT_REDIS_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379


@dataclass(frozen=True)
class RedisTarget:
    """Where REDIS_CONN_STRING points: a URL (standalone) or a node list (sentinel, cluster)."""

    mode: Literal["standalone", "sentinel", "cluster"]
    url: str = field(default="", repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    password: str = field(default="", repr=False)


def parse_redis_target(
    conn_string: str, *, password: str = "", master_name: str = ""
) -> RedisTarget | None:
    """Read REDIS_CONN_STRING as One API does; None when it is empty (no Redis).

    - ``redis://``, ``rediss://`` or ``unix://`` URL: one standalone server (credentials and
      database in the URL; REDIS_PASSWORD fills in a URL without a password);
    - ``host:port,host:port`` with REDIS_MASTER_NAME: sentinels of that master (default port
      26379), REDIS_PASSWORD being the master's password;
    - ``host:port,host:port`` without it: seed nodes of a Redis Cluster (default port 6379),
      REDIS_PASSWORD being the nodes' password.
    """
    conn_string = conn_string.strip()
    if not conn_string:
        return None
    if conn_string.lower().startswith(URL_SCHEMES):
        if master_name:
            logger.warning("REDIS_MASTER_NAME is ignored: REDIS_CONN_STRING is a URL")
        return RedisTarget("standalone", url=conn_string, password=password)
    mode: Literal["sentinel", "cluster"] = "sentinel" if master_name else "cluster"
    default_port = DEFAULT_SENTINEL_PORT if master_name else DEFAULT_REDIS_PORT
    nodes = tuple(
        _parse_node(entry.strip(), default_port)
        for entry in conn_string.split(",")
        if entry.strip()
    )
    if not nodes:
        raise CacheConfigError("REDIS_CONN_STRING names no node")
    return RedisTarget(mode, nodes=nodes, master_name=master_name, password=password)


def _parse_node(entry: str, default_port: int) -> tuple[str, int]:
    if "://" in entry or "@" in entry:
        raise CacheConfigError(
            "REDIS_CONN_STRING: a node list holds host:port entries only "
            "(a URL is for one standalone server; the password goes in REDIS_PASSWORD)"
        )
    if entry.startswith("["):  # [IPv6]:port
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not host:
        raise CacheConfigError(f"REDIS_CONN_STRING: node {entry!r} has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise CacheConfigError(f"REDIS_CONN_STRING: node {entry!r} has no valid port")
    return host, int(port_text)


def redis_cache(target: RedisTarget, *, prefix: str = DEFAULT_PREFIX) -> RedisCache:
    """A `RedisCache` for `target`. Nothing connects yet: the first command does."""
    closers: list[Callable[[], Awaitable[Any]]] = []
    client: Redis | RedisCluster
    password = target.password or None
    if target.mode == "standalone":
        has_password = urlsplit(target.url).password is not None
        try:
            extra: dict[str, Any] = {
                "socket_connect_timeout": CONNECT_TIMEOUT,
                "socket_timeout": COMMAND_TIMEOUT,
            }
            if password and not has_password:
                extra["password"] = password
            client = Redis.from_url(target.url, **extra)
        except ValueError as exc:
            raise CacheConfigError(f"REDIS_CONN_STRING is not a valid Redis URL: {exc}") from None
    elif target.mode == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            password=password,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
        )
        client = sentinel.master_for(target.master_name)
        closers.extend(manager.aclose for manager in sentinel.sentinels)
    else:
        startup_nodes = [ClusterNode(host, port) for host, port in target.nodes]
        client = RedisCluster(
            startup_nodes=startup_nodes,
            password=password,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
        )
    return RedisCache(client, prefix=prefix, also_close=closers)


def cache_from_settings(settings: Settings, *, max_entries: int = 100_000) -> Cache:
    """Redis when REDIS_CONN_STRING is set (see `parse_redis_target`), else in-process.

    Redis keys are prefixed ``oneapi:`` (``oneapi:<NATS_NAMESPACE>:`` in a namespace), so
    deployments and tests sharing a Redis do not see each other's keys.
    """
    target = parse_redis_target(
        settings.redis_conn_string,
        password=settings.redis_password,
        master_name=settings.redis_master_name,
    )
    if target is None:
        return InProcessCache(max_entries=max_entries)
    namespace = settings.nats_namespace
    prefix = f"{DEFAULT_PREFIX}{namespace}:" if namespace else DEFAULT_PREFIX
    logger.info("cache: Redis (%s, %d node(s))", target.mode, max(1, len(target.nodes)))
    return redis_cache(target, prefix=prefix)
