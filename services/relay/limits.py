"""Limits beyond One API: requests per minute per token and per user, concurrent requests."""

from __future__ import annotations

import time
from typing import Protocol

from libs.common.cache import Cache
from services.relay.errors import RelayError


class Identified(Protocol):
    @property
    def id(self) -> int: ...


class Limiter:
    """Per-minute windows live in the cache (shared through Redis by every relay); the
    concurrency bound is per process, since it protects this process's connections."""

    def __init__(
        self, cache: Cache, *, max_concurrency: int, token_rpm: int, user_rpm: int
    ) -> None:
        self._cache = cache
        self._max_concurrency = max_concurrency
        self._token_rpm = token_rpm
        self._user_rpm = user_rpm
        self.in_flight = 0

    async def check_rate(self, token_id: int, user_id: int) -> None:
        minute = int(time.time() // 60)
        if self._token_rpm:
            hits = await self._cache.hit(f"rpm:token:{token_id}:{minute}", 60)
            if hits > self._token_rpm:
                raise _rate_limited("token", self._token_rpm)
        if self._user_rpm:
            hits = await self._cache.hit(f"rpm:user:{user_id}:{minute}", 60)
            if hits > self._user_rpm:
                raise _rate_limited("user", self._user_rpm)

    def enter(self) -> bool:
        if self._max_concurrency and self.in_flight >= self._max_concurrency:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def _rate_limited(scope: str, limit: int) -> RelayError:
    return RelayError(
        429,
        f"rate limit reached: {limit} requests per minute per {scope}",
        type="rate_limit_error",
        code="rate_limit_exceeded",
    )
