"""The quota ledger: admission that stays safe between a request's end and its billing.

The relay never writes SQL. Spend leaves as `usage` events; billing writes it to the database
in batches and publishes `QuotaUpdated` (new balances, settled request ids). Until then the
spend is known only here. Per account (a token or a user) the ledger keeps:

    balance   the database value last seen (token.remain_quota, user.quota)
    version   its used_quota at that moment: monotonic as billing settles, so an older read
              never overwrites newer knowledge
    pending   estimates reserved by requests in flight + actual cost of requests that ended
              but are not settled yet

and admits a request only if ``balance - pending >= estimate`` for the user and (unless it is
unlimited) the token. Per request it keeps a record {token, user, amount, state} so that
finishing, cancelling and settling are idempotent.

    ledger = ledger_for(cache)                       # RedisLedger or InProcessLedger
    if not await ledger.known(Account.token(7)):
        await ledger.observe(Account.token(7), remain_quota, used_quota)     # from the DB
    admission = await ledger.admit(request_id, token=Account.token(7), user=Account.user(3),
                                   estimate=pre, token_unlimited=False)      # or raises
    await ledger.finish(admission, actual)           # before publishing the usage event
    await ledger.cancel(admission)                   # instead, when nothing is billed
    await ledger.settle(quota_updated)               # on every QuotaUpdated

Trust rule (One API's, made safe for tokens)
    One API pre-charges nothing when the user holds more than 100 times the estimate. Here a
    request reserves nothing when the user's available balance exceeds 100 * estimate *and*
    the token is unlimited or its available balance does too. The token clause is an
    addition: without it, a rich user's nearly spent token would admit any number of
    concurrent requests (a token's quota is the user's own spending cap). The estimate is
    always checked against both accounts.

Settlement
    `settle` subtracts each settled record's amount from both pendings, deletes the record
    and stores the event's balances, in one atomic step (one Lua script on Redis), so no
    reader sees a balance already lowered with its pending not yet lowered, nor the reverse.
    A record is settled once however often the event is delivered and however many relays
    apply it (the record is gone after the first). A balance older than the one stored
    (lower used_quota, e.g. events out of order) is ignored; the records are still settled
    (the stored, newer balance already contains their spend). If a settled record's account
    has no balance in the event, that account's balance is forgotten (pending is kept): its
    next admission re-reads the database, which holds the spend, instead of counting it in
    neither place.

Expiry of lost records (the trade-off)
    A record whose settlement never comes (relay crashed before publishing, message lost)
    would hold pending forever. Records expire: `reservation_ttl` (default 15 min) after
    admission, `finished_ttl` (default 1 h) after `finish`; expiry subtracts their amount.
    Too short a TTL frees spend that billing has not written yet (the balance will drop
    later): that is overshoot, by at most the expired amounts. Too long a TTL keeps a lost
    record's amount blocked: the account looks poorer than it is (never richer). So
    `reservation_ttl` should exceed the longest request (upstream timeout; `finish` of a
    request whose reservation expired counts its actual cost again, so only the time between
    expiry and finish is exposed), and `finished_ttl` the longest billing delay worth trusting.
    Balances also go stale: `known()` turns False `balance_ttl` (default 10 min) after the
    last observation, so the caller re-reads the database; with `balance_ttl < finished_ttl`
    a lost `QuotaUpdated` is healed by that re-read before its records expire, and the
    expiry then removes a double count instead of creating an under-count.

Bounded overshoot (ARCHITECTURE.md invariant 3)
    For one account with quota Q, let F be the requests in flight (admitted, not finished or
    cancelled) right after the last admission, each with reservation r_i (0 when trusted)
    and final cost a_i. Then

        total spend - Q  <=  sum over F of (a_i - r_i)

    Proof: at the last admission the ledger checked balance - pending >= estimate, and after
    reserving, Q - (settled + finished-unsettled actuals + reservations of F) >= 0 (settling
    moves spend from pending to balance without changing the difference). Afterwards no
    request is admitted, and each request of F adds a_i - r_i when it finishes. With Redis
    the counter is shared, so this holds for any number R of relays together. Without Redis
    each process has its own ledger: the bound holds per process, and R processes together
    may overshoot by up to (R - 1) times the available balance at the last settlement. Two
    events widen it: records that expire before their settlement (their amounts), and
    balances the ledger reads from a database write it does not know about (an admin
    lowering a quota after the read, until `forget`).
    `tests/services/relay/test_admission.py` checks the bound on random interleavings.

Redis (shared by every relay; standalone, sentinel or cluster)
    Every key lives under one hash tag, ``{quota}``, so every script's keys share a slot and
    one script covers the token, the user, the request records and the expiry index; settle
    covers a whole event. Keys, under the cache's prefix P:

        P{quota}:t:<token_id>   hash  b (balance), v (version), p (pending), f (fresh until,
        P{quota}:u:<user_id>    hash  Redis ms, 0 = never stale); expire after `state_ttl`
                                      idle, refreshed by each write (longer than any record)
        P{quota}:records        hash  request id -> "<token>|<user>|<amount>|<r or f>"
        P{quota}:expiries       zset  request id scored by its expiry (Redis ms)

    Scripts read the time from Redis (TIME), never from a relay's clock. Expired records are
    cleaned lazily (up to 256 per call) by every writing script; the account keys of an
    expired record are built inside the script (same slot: Redis Cluster accepts that).
    Why one tag: a request touches a token and a user, and `QuotaUpdated` names tokens
    without their users, so per-user tags would need an index and a multi-step settle. The
    cost is that all ledger traffic lands on one shard: about four commands per request,
    ~10k requests/s on a common shard. Growing past that needs tag-by-user keys, i.e. the
    token's user id in `Account` and in `events.TokenBalance`.
    Amounts are exact integers in Redis (HINCRBY); Lua compares them as doubles, exact
    below 2**53 quota (18 billion USD). Redis must not evict these keys (noeviction, or
    memory to spare): an evicted account would lose its pending.
"""

from __future__ import annotations

import abc
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, NamedTuple

import redis.exceptions

from libs.common.cache import Cache, RedisCache
from libs.common.events import QuotaUpdated
from libs.common.pricing.defaults import TRUST_FACTOR

AccountKind = Literal["token", "user"]

DEFAULT_RESERVATION_TTL: Final = 15 * 60.0
DEFAULT_FINISHED_TTL: Final = 60 * 60.0
DEFAULT_BALANCE_TTL: Final = 10 * 60.0
DEFAULT_STATE_TTL: Final = 24 * 3600.0
MAX_AMOUNT: Final = 2**53
"""Estimates and costs must stay below this: Lua compares amounts as doubles."""


# --- errors ------------------------------------------------------------------------------------


class LedgerError(Exception):
    """Base of the errors the ledger raises."""


class LedgerUnavailable(LedgerError):
    """Redis cannot be reached now; a retry may succeed."""


class UnknownAccountError(LedgerError):
    """Admission needs a balance the ledger does not hold: `observe` it first."""

    def __init__(self, account: Account) -> None:
        super().__init__(f"no balance known for {account.kind} {account.id}: observe it first")
        self.account = account


class InsufficientQuotaError(LedgerError):
    """The estimate exceeds an account's balance minus its pending spend (HTTP 403)."""

    code: ClassVar[str] = "insufficient_quota"
    message: ClassVar[str] = "额度不足"
    status_code: ClassVar[int] = 403

    def __init__(self, account: Account, estimate: int) -> None:
        super().__init__(self.message)
        self.account = account
        self.estimate = estimate


class InsufficientUserQuota(InsufficientQuotaError):
    """The user cannot cover the estimate."""

    code: ClassVar[str] = "insufficient_user_quota"
    message: ClassVar[str] = "用户额度不足"


class InsufficientTokenQuota(InsufficientQuotaError):
    """The (limited) token cannot cover the estimate."""

    code: ClassVar[str] = "insufficient_token_quota"
    message: ClassVar[str] = "令牌额度不足"


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    """A token or a user, by database id."""

    kind: AccountKind
    id: int

    @classmethod
    def token(cls, token_id: int) -> Account:
        return cls("token", token_id)

    @classmethod
    def user(cls, user_id: int) -> Account:
        return cls("user", user_id)


class BalanceView(NamedTuple):
    """What the ledger holds for an account: `available` is what admission compares."""

    balance: int
    pending: int

    @property
    def available(self) -> int:
        return self.balance - self.pending


AdmissionState = Literal["reserved", "finished", "cancelled"]


@dataclass(slots=True)
class Admission:
    """An admitted request; hand it back to `finish` or `cancel` exactly once."""

    request_id: str
    token_id: int
    user_id: int
    estimate: int
    reserved: int
    """What was added to both pendings: the estimate, or 0 for a trusted request."""
    state: AdmissionState = "reserved"


# --- the interface -----------------------------------------------------------------------------


class Ledger(abc.ABC):
    """Admission against balances minus pending spend; see the module's docstring."""

    def __init__(
        self,
        *,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        finished_ttl: float = DEFAULT_FINISHED_TTL,
        balance_ttl: float | None = DEFAULT_BALANCE_TTL,
        trust_factor: int = TRUST_FACTOR,
    ) -> None:
        """TTLs in seconds; `balance_ttl` None keeps a balance fresh until `forget`."""
        for name, value in (("reservation_ttl", reservation_ttl), ("finished_ttl", finished_ttl)):
            if not value > 0:
                raise ValueError(f"{name} must be positive seconds, got {value!r}")
        if balance_ttl is not None and not balance_ttl > 0:
            raise ValueError(f"balance_ttl must be positive seconds or None, got {balance_ttl!r}")
        if trust_factor < 0:
            raise ValueError(f"trust_factor must not be negative, got {trust_factor}")
        self.reservation_ttl = reservation_ttl
        self.finished_ttl = finished_ttl
        self.balance_ttl = balance_ttl
        self.trust_factor = trust_factor

    @abc.abstractmethod
    async def observe(self, account: Account, balance: int, version: int) -> bool:
        """Record a balance read from the database; True when applied.

        Applied only if `version` (the account's used_quota) is at least the stored one. An
        older read leaves the stored balance as it is, and marks it fresh again: it is at
        least as recent as the database the caller just read.
        """

    @abc.abstractmethod
    async def forget(self, account: Account) -> None:
        """Drop the account's balance (an admin edited it): the next admission re-reads it.

        Pending spend and the version are kept: they are not in the database yet.
        """

    @abc.abstractmethod
    async def known(self, account: Account) -> bool:
        """True when a balance is held and younger than `balance_ttl`."""

    @abc.abstractmethod
    async def balance_view(self, account: Account) -> BalanceView | None:
        """The held balance and pending spend, or None when no balance is held."""

    async def admit(
        self,
        request_id: str,
        *,
        token: Account,
        user: Account,
        estimate: int,
        token_unlimited: bool = False,
    ) -> Admission:
        """Check the estimate against the user and the token, and reserve it, atomically.

        Raises InsufficientUserQuota or InsufficientTokenQuota (nothing reserved), or
        UnknownAccountError when the user's balance (or a limited token's) is not held.
        Admitting a request id again returns the first admission's reservation.
        """
        if token.kind != "token" or user.kind != "user":
            raise ValueError("admit takes token=Account.token(...) and user=Account.user(...)")
        if not request_id:
            raise ValueError("request_id must not be empty")
        _check_amount("estimate", estimate)
        reserved = await self._admit(request_id, token, user, estimate, not token_unlimited)
        return Admission(request_id, token.id, user.id, estimate, reserved)

    async def finish(self, admission: Admission, actual_quota: int) -> None:
        """The request ended and costs `actual_quota`: it replaces the reservation in pending.

        The record then waits for its settlement (or `finished_ttl`). Call it before
        publishing the usage event. A second call, or a call after `cancel`, does nothing.
        """
        _check_amount("actual_quota", actual_quota)
        if admission.state != "reserved":
            return
        admission.state = "finished"
        await self._finish(admission, actual_quota)

    async def cancel(self, admission: Admission) -> None:
        """The request failed and nothing is billed: release its reservation (once)."""
        if admission.state != "reserved":
            return
        admission.state = "cancelled"
        await self._cancel(admission)

    @abc.abstractmethod
    async def settle(self, event: QuotaUpdated) -> int:
        """Apply a billing commit atomically; returns how many records it settled here."""

    @abc.abstractmethod
    async def _admit(
        self, request_id: str, token: Account, user: Account, estimate: int, check_token: bool
    ) -> int: ...

    @abc.abstractmethod
    async def _finish(self, admission: Admission, actual: int) -> None: ...

    @abc.abstractmethod
    async def _cancel(self, admission: Admission) -> None: ...

    def _trusted(self, user_available: int, token_available: int | None, estimate: int) -> bool:
        limit = self.trust_factor * estimate
        return user_available > limit and (token_available is None or token_available > limit)


def _check_amount(name: str, value: int) -> None:
    if not 0 <= value < MAX_AMOUNT:
        raise ValueError(f"{name} must be between 0 and 2**53, got {value}")


def ledger_for(
    cache: Cache,
    *,
    reservation_ttl: float = DEFAULT_RESERVATION_TTL,
    finished_ttl: float = DEFAULT_FINISHED_TTL,
    balance_ttl: float | None = DEFAULT_BALANCE_TTL,
) -> Ledger:
    """The shared `RedisLedger` when the cache is Redis, else this process's `InProcessLedger`."""
    if isinstance(cache, RedisCache):
        return RedisLedger(
            cache,
            reservation_ttl=reservation_ttl,
            finished_ttl=finished_ttl,
            balance_ttl=balance_ttl,
        )
    return InProcessLedger(
        reservation_ttl=reservation_ttl, finished_ttl=finished_ttl, balance_ttl=balance_ttl
    )


# --- in process --------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    balance: int | None = None
    version: int | None = None
    pending: int = 0
    fresh_until: float = math.inf


@dataclass(slots=True)
class _Record:
    token_id: int
    user_id: int
    amount: int
    finished: bool
    expires_at: float


class InProcessLedger(Ledger):
    """The ledger of one process (no Redis). asyncio-safe: no method awaits mid-update.

    Not thread-safe: use it from the event loop's thread. Records expire in insertion order
    (one TTL per state), so two ordered dictionaries are the expiry index.
    """

    def __init__(
        self,
        *,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        finished_ttl: float = DEFAULT_FINISHED_TTL,
        balance_ttl: float | None = DEFAULT_BALANCE_TTL,
        trust_factor: int = TRUST_FACTOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            reservation_ttl=reservation_ttl,
            finished_ttl=finished_ttl,
            balance_ttl=balance_ttl,
            trust_factor=trust_factor,
        )
        self._clock = clock
        self._states: dict[Account, _State] = {}
        self._records: dict[str, _Record] = {}
        # request id -> expiry, oldest first; a record is in exactly one of the two.
        self._reserved: OrderedDict[str, float] = OrderedDict()
        self._finished: OrderedDict[str, float] = OrderedDict()

    async def observe(self, account: Account, balance: int, version: int) -> bool:
        return self._observe(account, balance, version, self._clock())

    async def forget(self, account: Account) -> None:
        state = self._states.get(account)
        if state is not None:
            state.balance = None

    async def known(self, account: Account) -> bool:
        state = self._states.get(account)
        return state is not None and state.balance is not None and self._clock() < state.fresh_until

    async def balance_view(self, account: Account) -> BalanceView | None:
        self._expire(self._clock())
        state = self._states.get(account)
        if state is None or state.balance is None:
            return None
        return BalanceView(state.balance, state.pending)

    async def settle(self, event: QuotaUpdated) -> int:
        self._expire(now := self._clock())
        reported = {Account.user(user.id) for user in event.users}
        reported.update(Account.token(token.id) for token in event.tokens)
        settled = 0
        for request_id in event.request_ids:
            record = self._pop(request_id)
            if record is None:
                continue
            settled += 1
            self._release(record)
            for account in (Account.user(record.user_id), Account.token(record.token_id)):
                if account not in reported and account in self._states:
                    self._states[account].balance = None
        for user in event.users:
            self._observe(Account.user(user.id), user.quota, user.used_quota, now)
        for token in event.tokens:
            self._observe(Account.token(token.id), token.remain_quota, token.used_quota, now)
        return settled

    async def _admit(
        self, request_id: str, token: Account, user: Account, estimate: int, check_token: bool
    ) -> int:
        self._expire(now := self._clock())
        existing = self._records.get(request_id)
        if existing is not None:
            return existing.amount
        user_state = self._states.get(user)
        if user_state is None or user_state.balance is None:
            raise UnknownAccountError(user)
        token_state = self._states.setdefault(token, _State())
        token_available: int | None = None
        if check_token:
            if token_state.balance is None:
                raise UnknownAccountError(token)
            token_available = token_state.balance - token_state.pending
        user_available = user_state.balance - user_state.pending
        if user_available < estimate:
            raise InsufficientUserQuota(user, estimate)
        if token_available is not None and token_available < estimate:
            raise InsufficientTokenQuota(token, estimate)
        reserved = 0 if self._trusted(user_available, token_available, estimate) else estimate
        user_state.pending += reserved
        token_state.pending += reserved
        expires_at = now + self.reservation_ttl
        self._records[request_id] = _Record(token.id, user.id, reserved, False, expires_at)
        self._reserved[request_id] = expires_at
        return reserved

    async def _finish(self, admission: Admission, actual: int) -> None:
        self._expire(now := self._clock())
        record = self._records.get(admission.request_id)
        if record is not None and record.finished:
            return
        # No record: the reservation expired during a long request; count the cost again.
        delta = actual if record is None else actual - record.amount
        self._add_pending(Account.user(admission.user_id), delta)
        self._add_pending(Account.token(admission.token_id), delta)
        expires_at = now + self.finished_ttl
        self._reserved.pop(admission.request_id, None)
        self._records[admission.request_id] = _Record(
            admission.token_id, admission.user_id, actual, True, expires_at
        )
        self._finished[admission.request_id] = expires_at

    async def _cancel(self, admission: Admission) -> None:
        self._expire(self._clock())
        record = self._records.get(admission.request_id)
        if record is None or record.finished:
            return
        self._pop(admission.request_id)
        self._release(record)

    # --- synchronous helpers (never await: that is what makes them atomic) ---------------

    def _observe(self, account: Account, balance: int, version: int, now: float) -> bool:
        state = self._states.setdefault(account, _State())
        fresh_until = math.inf if self.balance_ttl is None else now + self.balance_ttl
        if state.version is not None and version < state.version:
            if state.balance is not None:
                state.fresh_until = fresh_until
            return False
        state.balance, state.version, state.fresh_until = balance, version, fresh_until
        return True

    def _add_pending(self, account: Account, delta: int) -> None:
        state = self._states.setdefault(account, _State())
        # Never below zero: a negative pending would admit beyond the balance.
        state.pending = max(0, state.pending + delta)

    def _release(self, record: _Record) -> None:
        self._add_pending(Account.user(record.user_id), -record.amount)
        self._add_pending(Account.token(record.token_id), -record.amount)

    def _pop(self, request_id: str) -> _Record | None:
        record = self._records.pop(request_id, None)
        if record is not None:
            (self._finished if record.finished else self._reserved).pop(request_id, None)
        return record

    def _expire(self, now: float) -> None:
        for index in (self._reserved, self._finished):
            while index:
                request_id, expires_at = next(iter(index.items()))
                if expires_at > now:
                    break
                record = self._pop(request_id)
                if record is not None:
                    self._release(record)


# --- Redis -------------------------------------------------------------------------------------

# Every script: KEYS[1] records, KEYS[2] expiries, then account keys;
# ARGV[1] the key base ("<prefix>{quota}:"), ARGV[2] the account keys' idle TTL (ms).
_PRELUDE: Final = """
local base, state_ttl = ARGV[1], ARGV[2]
local records, expiries = KEYS[1], KEYS[2]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Lua numbers are doubles; %d writes an integer exactly (tostring would not).
local function int(n) return string.format('%d', n) end

local function touch(key) redis.call('PEXPIRE', key, state_ttl) end

local function add_pending(key, delta)
  if delta ~= 0 then
    -- Never below zero: a negative pending would admit beyond the balance.
    if redis.call('HINCRBY', key, 'p', int(delta)) < 0 then
      redis.call('HSET', key, 'p', '0')
    end
    touch(key)
  end
end

local function parse(record)
  local tid, uid, amount, state = string.match(record, '^(%d+)|(%d+)|(%d+)|(%a)$')
  return tid, uid, tonumber(amount), state
end

local function release(record)
  local tid, uid, amount = parse(record)
  add_pending(base .. 'u:' .. uid, -amount)
  add_pending(base .. 't:' .. tid, -amount)
  return tid, uid
end

local function expire_lost(now)
  local due = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 256)
  for _, rid in ipairs(due) do
    local record = redis.call('HGET', records, rid)
    if record then
      release(record)
      redis.call('HDEL', records, rid)
    end
    redis.call('ZREM', expiries, rid)
  end
end

local function available(key)
  local held = redis.call('HMGET', key, 'b', 'p')
  if not held[1] then return nil end
  return tonumber(held[1]) - tonumber(held[2] or '0')
end

local function observe(key, balance, version, now, balance_ttl)
  local fresh = '0'
  if balance_ttl > 0 then fresh = int(now + balance_ttl) end
  local stored = redis.call('HGET', key, 'v')
  local applied = 0
  if stored and tonumber(stored) > tonumber(version) then
    if redis.call('HEXISTS', key, 'b') == 1 then redis.call('HSET', key, 'f', fresh) end
  else
    redis.call('HSET', key, 'b', balance, 'v', version, 'f', fresh)
    applied = 1
  end
  touch(key)
  return applied
end
"""

# KEYS[3] account; ARGV[3] balance, ARGV[4] version, ARGV[5] balance TTL (ms, 0 = never stale)
_OBSERVE: Final = (
    _PRELUDE
    + """
return observe(KEYS[3], ARGV[3], ARGV[4], now_ms(), tonumber(ARGV[5]))
"""
)

# KEYS[3] account -> {balance or '', pending}
_VIEW: Final = (
    _PRELUDE
    + """
expire_lost(now_ms())
local held = redis.call('HMGET', KEYS[3], 'b', 'p')
return {held[1] or '', held[2] or '0'}
"""
)

# KEYS[3] user, KEYS[4] token; ARGV[3] request id, ARGV[4] token id, ARGV[5] user id,
# ARGV[6] estimate, ARGV[7] '1' to check the token, ARGV[8] trust factor, ARGV[9] TTL (ms).
# -> {status, reserved}: 0 admitted, 1 user short, 2 token short, 3 user unknown,
#    4 token unknown, 5 already admitted.
_ADMIT: Final = (
    _PRELUDE
    + """
local now = now_ms()
expire_lost(now)
local user, token, rid = KEYS[3], KEYS[4], ARGV[3]
local existing = redis.call('HGET', records, rid)
if existing then
  local _, _, amount = parse(existing)
  return {5, amount}
end
local estimate = tonumber(ARGV[6])
local check_token = ARGV[7] == '1'
local user_available = available(user)
if not user_available then return {3, 0} end
local token_available = nil
if check_token then
  token_available = available(token)
  if not token_available then return {4, 0} end
end
if user_available < estimate then return {1, 0} end
if check_token and token_available < estimate then return {2, 0} end
local limit = tonumber(ARGV[8]) * estimate
local reserved = estimate
if user_available > limit and (not check_token or token_available > limit) then
  reserved = 0
end
add_pending(user, reserved)
add_pending(token, reserved)
touch(user)
touch(token)
redis.call('HSET', records, rid, ARGV[4] .. '|' .. ARGV[5] .. '|' .. int(reserved) .. '|r')
redis.call('ZADD', expiries, now + tonumber(ARGV[9]), rid)
return {0, reserved}
"""
)

# KEYS[3] user, KEYS[4] token; ARGV[3] request id, ARGV[4] token id, ARGV[5] user id,
# ARGV[6] actual cost, ARGV[7] TTL (ms). -> 1 replaced, 2 re-counted (expired), 0 no-op
_FINISH: Final = (
    _PRELUDE
    + """
local now = now_ms()
expire_lost(now)
local rid, actual = ARGV[3], tonumber(ARGV[6])
local record = redis.call('HGET', records, rid)
local delta, result = actual, 2
if record then
  local _, _, amount, state = parse(record)
  if state == 'f' then return 0 end
  delta, result = actual - amount, 1
end
add_pending(KEYS[3], delta)
add_pending(KEYS[4], delta)
touch(KEYS[3])
touch(KEYS[4])
redis.call('HSET', records, rid, ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|f')
redis.call('ZADD', expiries, now + tonumber(ARGV[7]), rid)
return result
"""
)

# ARGV[3] request id -> 1 released, 0 nothing to release
_CANCEL: Final = (
    _PRELUDE
    + """
expire_lost(now_ms())
local rid = ARGV[3]
local record = redis.call('HGET', records, rid)
if not record then return 0 end
local _, _, _, state = parse(record)
if state ~= 'r' then return 0 end
release(record)
redis.call('HDEL', records, rid)
redis.call('ZREM', expiries, rid)
return 1
"""
)

# KEYS[3..] the accounts whose balance the event carries; ARGV[3] balance TTL (ms),
# ARGV[4] n = #those accounts, ARGV[5 .. 4+2n] (balance, version) per account in KEYS
# order, then the settled request ids. -> how many records were settled
_SETTLE: Final = (
    _PRELUDE
    + """
local now = now_ms()
expire_lost(now)
local balance_ttl = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local reported = {}
for i = 1, n do reported[KEYS[2 + i]] = true end
local first = 5 + 2 * n
local settled = 0
local orphans = {}
for chunk = first, #ARGV, 500 do
  local ids = {}
  for i = chunk, math.min(chunk + 499, #ARGV) do ids[#ids + 1] = ARGV[i] end
  local held = redis.call('HMGET', records, unpack(ids))
  for i, record in ipairs(held) do
    if record then
      local tid, uid = release(record)
      redis.call('HDEL', records, ids[i])
      redis.call('ZREM', expiries, ids[i])
      settled = settled + 1
      for _, key in ipairs({base .. 'u:' .. uid, base .. 't:' .. tid}) do
        if not reported[key] then orphans[key] = true end
      end
    end
  end
end
for i = 1, n do
  observe(KEYS[2 + i], ARGV[3 + 2 * i], ARGV[4 + 2 * i], now, balance_ttl)
end
-- Spend settled without its account's new balance: re-read it from the database.
for key in pairs(orphans) do redis.call('HDEL', key, 'b', 'f') end
return settled
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisLedger(Ledger):
    """The ledger every relay shares through Redis (one Lua script per operation).

    `state_ttl` (seconds) drops an account's keys after that long without a write; it must
    exceed the record TTLs so that an account outlives its records.
    """

    def __init__(
        self,
        cache: RedisCache,
        *,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        finished_ttl: float = DEFAULT_FINISHED_TTL,
        balance_ttl: float | None = DEFAULT_BALANCE_TTL,
        trust_factor: int = TRUST_FACTOR,
        state_ttl: float = DEFAULT_STATE_TTL,
    ) -> None:
        super().__init__(
            reservation_ttl=reservation_ttl,
            finished_ttl=finished_ttl,
            balance_ttl=balance_ttl,
            trust_factor=trust_factor,
        )
        if not state_ttl > max(reservation_ttl, finished_ttl):
            raise ValueError("state_ttl must exceed reservation_ttl and finished_ttl")
        client = cache.client
        self._base = cache.key("{quota}:")
        self._records = self._base + "records"
        self._expiries = self._base + "expiries"
        self._state_ttl = str(_ms(state_ttl))
        self._balance_ttl = "0" if balance_ttl is None else str(_ms(balance_ttl))
        self._client = client
        self._observe_script = client.register_script(_OBSERVE)
        self._view_script = client.register_script(_VIEW)
        self._admit_script = client.register_script(_ADMIT)
        self._finish_script = client.register_script(_FINISH)
        self._cancel_script = client.register_script(_CANCEL)
        self._settle_script = client.register_script(_SETTLE)

    def account_key(self, account: Account) -> str:
        """The Redis key of `account`'s hash."""
        return f"{self._base}{'t' if account.kind == 'token' else 'u'}:{account.id}"

    async def observe(self, account: Account, balance: int, version: int) -> bool:
        keys = [self._records, self._expiries, self.account_key(account)]
        args = [self._base, self._state_ttl, str(balance), str(version), self._balance_ttl]
        return bool(await self._run(self._observe_script, keys, args))

    async def forget(self, account: Account) -> None:
        async with _redis_errors():
            await self._client.hdel(self.account_key(account), "b", "f")

    async def known(self, account: Account) -> bool:
        async with _redis_errors():
            balance, fresh = await self._client.hmget(self.account_key(account), ["b", "f"])
        if balance is None:
            return False
        # Redis wrote `fresh` with its clock; a few seconds of skew do not matter here.
        until = int(fresh or 0)
        return until == 0 or until > time.time() * 1000

    async def balance_view(self, account: Account) -> BalanceView | None:
        keys = [self._records, self._expiries, self.account_key(account)]
        balance, pending = await self._run(self._view_script, keys, [self._base, self._state_ttl])
        if balance in (b"", ""):
            return None
        return BalanceView(int(balance), int(pending))

    async def settle(self, event: QuotaUpdated) -> int:
        keys = [self._records, self._expiries]
        args = [self._base, self._state_ttl, self._balance_ttl, ""]
        for user in event.users:
            keys.append(self.account_key(Account.user(user.id)))
            args += [str(user.quota), str(user.used_quota)]
        for token in event.tokens:
            keys.append(self.account_key(Account.token(token.id)))
            args += [str(token.remain_quota), str(token.used_quota)]
        args[3] = str(len(keys) - 2)
        args += event.request_ids
        return int(await self._run(self._settle_script, keys, args))

    async def _admit(
        self, request_id: str, token: Account, user: Account, estimate: int, check_token: bool
    ) -> int:
        keys = [self._records, self._expiries, self.account_key(user), self.account_key(token)]
        args = [
            self._base,
            self._state_ttl,
            request_id,
            str(token.id),
            str(user.id),
            str(estimate),
            "1" if check_token else "0",
            str(self.trust_factor),
            str(_ms(self.reservation_ttl)),
        ]
        status, reserved = await self._run(self._admit_script, keys, args)
        if status in (0, 5):
            return int(reserved)
        if status == 1:
            raise InsufficientUserQuota(user, estimate)
        if status == 2:
            raise InsufficientTokenQuota(token, estimate)
        if status == 3:
            raise UnknownAccountError(user)
        if status == 4:
            raise UnknownAccountError(token)
        raise LedgerError(f"unexpected admission status {status!r}")

    async def _finish(self, admission: Admission, actual: int) -> None:
        keys = [
            self._records,
            self._expiries,
            self.account_key(Account.user(admission.user_id)),
            self.account_key(Account.token(admission.token_id)),
        ]
        args = [
            self._base,
            self._state_ttl,
            admission.request_id,
            str(admission.token_id),
            str(admission.user_id),
            str(actual),
            str(_ms(self.finished_ttl)),
        ]
        await self._run(self._finish_script, keys, args)

    async def _cancel(self, admission: Admission) -> None:
        keys = [self._records, self._expiries]
        args = [self._base, self._state_ttl, admission.request_id]
        await self._run(self._cancel_script, keys, args)

    async def _run(self, script: Any, keys: list[str], args: list[str]) -> Any:
        async with _redis_errors():
            return await script(keys=keys, args=args)


@asynccontextmanager
async def _redis_errors() -> AsyncIterator[None]:
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise LedgerUnavailable(f"Redis unreachable: {type(exc).__name__}: {exc}") from None
    except redis.exceptions.RedisError as exc:
        raise LedgerError(f"Redis refused a ledger script: {exc}") from None
