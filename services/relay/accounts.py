"""Tokens and users as the relay sees them: cached, read-only, dropped when the admin edits them.

Lookup order: this process's memory, then the shared cache (Redis when configured), then the
database (a read, on a miss only). `config.changed` for a token or user drops it everywhere
within a second; `SYNC_FREQUENCY` bounds how long a missed event can leave an entry stale.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec
from sqlalchemy import select

from libs.common.cache import Cache
from libs.common.db import Database
from libs.common.db.models import Token, User

K = TypeVar("K")
V = TypeVar("V")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UserRecord(msgspec.Struct, frozen=True):
    id: int
    username: str
    group: str
    status: int
    role: int
    quota: int
    used_quota: int


class TokenRecord(msgspec.Struct, frozen=True):
    id: int
    user_id: int
    key: str
    name: str
    status: int
    expired_time: int
    remain_quota: int
    unlimited_quota: bool
    used_quota: int
    models: list[str] | None  # None: every model
    subnets: list[str] | None  # None: any address

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models

    def allows_address(self, address: str) -> bool:
        if self.subnets is None:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in _network(subnet) for subnet in self.subnets)


def _network(subnet: str) -> Network:
    return ipaddress.ip_network(subnet, strict=False)


def _comma_list(value: str | None) -> list[str] | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


def _valid_subnets(value: str | None) -> list[str] | None:
    subnets = _comma_list(value)
    if subnets is None:
        return None
    valid = []
    for subnet in subnets:
        try:
            valid.append(str(_network(subnet)))
        except ValueError:
            continue  # a typo must not open the token to every address: it matches nothing
    return valid


@dataclass
class _Entry(Generic[V]):
    value: V
    expires: float


class _LocalCache(Generic[K, V]):
    """A bounded, expiring map; the oldest entry goes first when full."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = _Entry(value, time.monotonic() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def drop_where(self, predicate: object) -> None:
        for key in [k for k, entry in self._entries.items() if predicate(entry.value)]:  # type: ignore[operator]
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()


class Accounts:
    """Token and user look-ups for authentication."""

    def __init__(
        self,
        database: Database,
        cache: Cache,
        *,
        ttl: float,
        max_entries: int = 100_000,
        on_lookup: Callable[[str], None] = lambda where: None,
    ) -> None:
        self._database = database
        self._cache = cache
        self._ttl = ttl
        self._tokens: _LocalCache[str, TokenRecord] = _LocalCache(ttl, max_entries)
        self._users: _LocalCache[int, UserRecord] = _LocalCache(ttl, max_entries)
        self._token_codec = msgspec.json.Decoder(TokenRecord)
        self._user_codec = msgspec.json.Decoder(UserRecord)
        self._on_lookup = on_lookup  # "memory", "shared" or "database": where a token was found

    async def token(self, key: str) -> TokenRecord | None:
        record = self._tokens.get(key)
        if record is not None:
            self._on_lookup("memory")
            return record
        shared = await self._cache.get(f"token:{key}")
        if shared is not None:
            self._on_lookup("shared")
            record = self._token_codec.decode(shared)
        else:
            self._on_lookup("database")
            record = await self._load_token(key)
            if record is None:
                return None
            await self._cache.set(f"token:{key}", msgspec.json.encode(record), ttl=self._ttl)
        self._tokens.put(key, record)
        return record

    async def user(self, user_id: int) -> UserRecord | None:
        record = self._users.get(user_id)
        if record is not None:
            return record
        shared = await self._cache.get(f"user:{user_id}")
        if shared is not None:
            record = self._user_codec.decode(shared)
        else:
            record = await self._load_user(user_id)
            if record is None:
                return None
            await self._cache.set(f"user:{user_id}", msgspec.json.encode(record), ttl=self._ttl)
        self._users.put(user_id, record)
        return record

    async def forget_tokens(self, ids: list[int], keys: list[str]) -> None:
        """Drop edited tokens (by key when known; by id from this process's memory)."""
        if not ids and not keys:
            self._tokens.clear()
            return
        wanted = set(ids)
        self._tokens.drop_where(lambda record: record.id in wanted)
        for key in keys:
            self._tokens.drop(key)
        if keys:
            await self._cache.delete(*[f"token:{key}" for key in keys])

    async def forget_users(self, ids: list[int]) -> None:
        if not ids:
            self._users.clear()
            return
        for user_id in ids:
            self._users.drop(user_id)
        await self._cache.delete(*[f"user:{user_id}" for user_id in ids])

    async def _load_token(self, key: str) -> TokenRecord | None:
        async with self._database.session() as session:
            row = (
                await session.execute(select(Token).where(Token.key == key))
            ).scalar_one_or_none()
        if row is None:
            return None
        return TokenRecord(
            id=row.id,
            user_id=row.user_id,
            key=row.key,
            name=row.name,
            status=row.status,
            expired_time=row.expired_time,
            remain_quota=row.remain_quota,
            unlimited_quota=row.unlimited_quota,
            used_quota=row.used_quota,
            models=_comma_list(row.models),
            subnets=_valid_subnets(row.subnet),
        )

    async def _load_user(self, user_id: int) -> UserRecord | None:
        async with self._database.session() as session:
            row = await session.get(User, user_id)
        if row is None:
            return None
        return UserRecord(
            id=row.id,
            username=row.username,
            group=row.group,
            status=row.status,
            role=row.role,
            quota=row.quota,
            used_quota=row.used_quota,
        )
