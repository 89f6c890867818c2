"""The cache: Redis when REDIS_CONN_STRING is set, this process's memory otherwise.

    cache = cache_from_settings(settings)
    await cache.set("token:sk-...", payload, ttl=60)
    hits = await cache.hit(f"rate:ip:{ip}", window_seconds=180)
    await cache.close()

One interface (`Cache`), two implementations that behave the same (`InProcessCache`,
`RedisCache`). Atomic multi-key scripts (quota reservation) use `RedisCache.client` and
`RedisCache.key` directly.

Exceptions::

    CacheError                  the cache refused the operation (INCRBY on text, ...)
    ├── CacheUnavailable        Redis cannot be reached now; a retry may succeed
    └── CacheConfigError        REDIS_CONN_STRING / REDIS_MASTER_NAME cannot be understood

Invalid arguments (a ttl or window that is not positive) raise ValueError.
"""

from __future__ import annotations

from libs.common.cache.base import Cache, CacheConfigError, CacheError, CacheUnavailable
from libs.common.cache.factory import (
    RedisTarget,
    cache_from_settings,
    parse_redis_target,
    redis_cache,
)
from libs.common.cache.memory import InProcessCache
from libs.common.cache.redis_cache import DEFAULT_PREFIX, RedisCache

__all__ = [
    "DEFAULT_PREFIX",
    "Cache",
    "CacheConfigError",
    "CacheError",
    "CacheUnavailable",
    "InProcessCache",
    "RedisCache",
    "RedisTarget",
    "cache_from_settings",
    "parse_redis_target",
    "redis_cache",
]
