"""The quota ledger, in process and on a real Redis: admission, settlement, expiry, bounds."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from redis.crc import key_slot

from libs.common.cache import InProcessCache, RedisCache
from libs.common.events import QuotaUpdated, TokenBalance, UserBalance
from services.relay.admission import (
    Account,
    Admission,
    InProcessLedger,
    InsufficientQuotaError,
    InsufficientTokenQuota,
    InsufficientUserQuota,
    Ledger,
    LedgerUnavailable,
    RedisLedger,
    UnknownAccountError,
    ledger_for,
)

TOKEN = Account.token(7)
USER = Account.user(3)
RICH = 10**12

LedgerFactory = Callable[..., Ledger]


@pytest.fixture(params=["in-process", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
async def make_ledger(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[LedgerFactory]:
    """Builds ledgers of the parametrised kind; each Redis ledger has its own connections."""
    caches: list[RedisCache] = []
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def make(**options: Any) -> Ledger:
        if kind == "in-process":
            return InProcessLedger(**options)
        cache = RedisCache(redis.asyncio.Redis.from_url(url))
        caches.append(cache)
        return RedisLedger(cache, **options)

    yield make
    for cache in caches:
        await cache.close()


@pytest.fixture
async def redis_ledgers(redis_url: str) -> AsyncIterator[Callable[..., RedisLedger]]:
    """Redis ledgers on separate connections: as many relays sharing one Redis."""
    caches: list[RedisCache] = []

    def make(**options: Any) -> RedisLedger:
        cache = RedisCache(redis.asyncio.Redis.from_url(redis_url))
        caches.append(cache)
        return RedisLedger(cache, **options)

    yield make
    for cache in caches:
        await cache.close()


async def opened(ledger: Ledger, *, token: int, user: int, version: int = 0) -> Ledger:
    await ledger.observe(TOKEN, token, version)
    await ledger.observe(USER, user, version)
    return ledger


async def admit(
    ledger: Ledger, request_id: str, estimate: int, *, token_unlimited: bool = False
) -> Admission:
    return await ledger.admit(
        request_id, token=TOKEN, user=USER, estimate=estimate, token_unlimited=token_unlimited
    )


async def view(ledger: Ledger, account: Account) -> tuple[int, int]:
    held = await ledger.balance_view(account)
    assert held is not None, f"{account} has no balance"
    return held.balance, held.pending


def settled(request_ids: list[str], *, spent: int, token: int, user: int) -> QuotaUpdated:
    """What billing publishes after committing `spent` quota in total for TOKEN and USER."""
    return QuotaUpdated(
        tokens=[TokenBalance(id=TOKEN.id, remain_quota=token - spent, used_quota=spent, status=1)],
        users=[UserBalance(id=USER.id, quota=user - spent, used_quota=spent, request_count=0)],
        request_ids=request_ids,
    )


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, timeout: float = 5.0, message: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.02)


# --- admission ---------------------------------------------------------------------------------


async def test_admit_within_the_balance_reserves_the_estimate(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=5_000)

    admission = await admit(ledger, "r1", 100)

    assert (admission.reserved, admission.estimate) == (100, 100)
    assert await view(ledger, TOKEN) == (5_000, 100)
    assert await view(ledger, USER) == (5_000, 100)


async def test_pending_spend_counts_against_the_next_admission(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=RICH, user=250)
    await admit(ledger, "r1", 100)
    await admit(ledger, "r2", 100)

    with pytest.raises(InsufficientUserQuota):
        await admit(ledger, "r3", 100)
    assert await view(ledger, USER) == (250, 200)


async def test_beyond_the_user_balance_is_refused_as_one_api_does(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=RICH, user=99)

    with pytest.raises(InsufficientUserQuota) as refused:
        await admit(ledger, "r1", 100)

    assert refused.value.code == "insufficient_user_quota"
    assert refused.value.message == "用户额度不足"
    assert refused.value.status_code == 403
    assert refused.value.account == USER
    assert await view(ledger, USER) == (99, 0)
    assert await view(ledger, TOKEN) == (RICH, 0)


async def test_beyond_the_token_balance_is_refused_as_one_api_does(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=99, user=RICH)

    with pytest.raises(InsufficientQuotaError) as refused:
        await admit(ledger, "r1", 100)

    assert isinstance(refused.value, InsufficientTokenQuota)
    assert refused.value.code == "insufficient_token_quota"
    assert refused.value.message == "令牌额度不足"
    assert await view(ledger, USER) == (RICH, 0)


async def test_an_unlimited_token_is_not_checked(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    await ledger.observe(USER, 1_000, 0)  # the unlimited token's balance is never needed

    admission = await admit(ledger, "r1", 100, token_unlimited=True)

    assert admission.reserved == 100
    assert await view(ledger, USER) == (1_000, 100)
    with pytest.raises(UnknownAccountError):
        await admit(ledger, "r2", 100)  # the same token, limited this time


async def test_admission_needs_the_balances_observed_first(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    with pytest.raises(UnknownAccountError) as unknown:
        await admit(ledger, "r1", 1)
    assert unknown.value.account == USER

    await ledger.observe(USER, 100, 0)
    with pytest.raises(UnknownAccountError) as unknown:
        await admit(ledger, "r1", 1)
    assert unknown.value.account == TOKEN


async def test_admitting_a_request_id_twice_reserves_once(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=1_000, user=1_000)

    first = await admit(ledger, "r1", 100)
    second = await admit(ledger, "r1", 100)

    assert first.reserved == second.reserved == 100
    assert await view(ledger, USER) == (1_000, 100)


async def test_a_trusted_user_reserves_nothing(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=RICH, user=100 * 50 + 1)

    trusted = await admit(ledger, "r1", 50)  # available 5001 > 100 * 50
    assert trusted.reserved == 0
    assert await view(ledger, USER) == (5_001, 0)

    untrusted = await admit(ledger, "r2", 51)  # 5001 <= 100 * 51
    assert untrusted.reserved == 51


async def test_a_nearly_spent_token_is_reserved_against_even_for_a_rich_user(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=1_000, user=RICH)

    admission = await admit(ledger, "r1", 100)

    assert admission.reserved == 100
    assert await view(ledger, TOKEN) == (1_000, 100)


async def test_estimates_must_be_whole_non_negative_amounts(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=100, user=100)
    with pytest.raises(ValueError, match="estimate"):
        await admit(ledger, "r1", -1)
    with pytest.raises(ValueError, match="admit takes"):
        await ledger.admit("r1", token=USER, user=TOKEN, estimate=1)


# --- finish, cancel ----------------------------------------------------------------------------


async def test_finish_replaces_the_reservation_by_the_actual_cost(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=5_000)
    cheaper = await admit(ledger, "r1", 100)
    dearer = await admit(ledger, "r2", 100)

    await ledger.finish(cheaper, 30)
    await ledger.finish(dearer, 250)
    await ledger.finish(dearer, 250)  # a second call changes nothing

    assert await view(ledger, USER) == (5_000, 280)
    assert await view(ledger, TOKEN) == (5_000, 280)


async def test_finish_of_a_trusted_request_counts_its_cost(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=RICH, user=RICH)
    admission = await admit(ledger, "r1", 100)
    assert admission.reserved == 0

    await ledger.finish(admission, 120)

    assert await view(ledger, USER) == (RICH, 120)


async def test_cancel_releases_the_reservation_once(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=5_000)
    kept = await admit(ledger, "r1", 100)
    failed = await admit(ledger, "r2", 100)

    await ledger.cancel(failed)
    await ledger.cancel(failed)
    assert await view(ledger, USER) == (5_000, 100)

    await ledger.finish(kept, 40)
    await ledger.cancel(kept)  # finished: there is something to bill, nothing to release
    assert await view(ledger, USER) == (5_000, 40)


# --- settle ------------------------------------------------------------------------------------


async def test_settle_moves_spend_from_pending_to_the_balance_once(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=8_000)
    done = await admit(ledger, "r1", 100)
    await admit(ledger, "r2", 100)  # still in flight
    await ledger.finish(done, 30)
    event = settled(["r1"], spent=30, token=5_000, user=8_000)

    assert await ledger.settle(event) == 1
    assert await ledger.settle(event) == 0  # redelivered

    assert await view(ledger, TOKEN) == (4_970, 100)
    assert await view(ledger, USER) == (7_970, 100)


async def test_two_relays_applying_the_same_settlement_subtract_once(
    redis_ledgers: Callable[..., RedisLedger],
) -> None:
    first, second = redis_ledgers(), redis_ledgers()
    await opened(first, token=5_000, user=8_000)
    done = await admit(first, "r1", 100)
    await admit(second, "r2", 100)
    await first.finish(done, 30)
    event = settled(["r1"], spent=30, token=5_000, user=8_000)

    counts = await asyncio.gather(first.settle(event), second.settle(event), first.settle(event))

    assert sorted(counts) == [0, 0, 1]
    for ledger in (first, second):
        assert await view(ledger, TOKEN) == (4_970, 100)
        assert await view(ledger, USER) == (7_970, 100)


async def test_a_settlement_out_of_order_keeps_the_newer_balance(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=8_000)
    for request_id, cost in (("r1", 10), ("r2", 20)):
        await ledger.finish(await admit(ledger, request_id, 100), cost)
    first_batch = settled(["r1"], spent=10, token=5_000, user=8_000)
    second_batch = settled(["r2"], spent=30, token=5_000, user=8_000)

    await ledger.settle(second_batch)
    assert await view(ledger, TOKEN) == (4_970, 10)  # r1 counted twice for a moment: safe
    await ledger.settle(first_batch)

    assert await view(ledger, TOKEN) == (4_970, 0)
    assert await view(ledger, USER) == (7_970, 0)


async def test_spend_settled_without_its_balance_makes_the_account_reload(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=8_000)
    await ledger.finish(await admit(ledger, "r1", 100), 30)
    only_user = QuotaUpdated(
        users=[UserBalance(id=USER.id, quota=7_970, used_quota=30, request_count=1)],
        request_ids=["r1"],
    )

    await ledger.settle(only_user)

    assert await view(ledger, USER) == (7_970, 0)
    # The token's pending dropped, its balance did not: it must be read again, not trusted.
    assert not await ledger.known(TOKEN)
    assert await ledger.balance_view(TOKEN) is None
    await ledger.observe(TOKEN, 4_970, 30)
    assert await view(ledger, TOKEN) == (4_970, 0)


async def test_available_never_rises_above_the_truth_while_settling(
    make_ledger: LedgerFactory, kind: str
) -> None:
    """Many concurrent admits and finishes, and billing settling behind them (each event
    applied twice, and by a second relay on Redis): at every read, balance - pending is at
    most what is really left; at the end it is exact."""
    token_quota, user_quota = 6_000, 9_000
    relay = await opened(make_ledger(), token=token_quota, user=user_quota)
    other_relay = make_ledger() if kind == "redis" else relay
    rng = random.Random(7)
    reserved_in_flight: dict[str, int] = {}
    finished_spend = 0
    to_settle: list[tuple[str, int]] = []
    violations: list[str] = []
    workers_done = asyncio.Event()
    counter = itertools.count()

    async def worker() -> None:
        nonlocal finished_spend
        for _ in range(40):
            request_id = f"r{next(counter)}"
            estimate = rng.randint(1, 40)
            try:
                admission = await admit(relay, request_id, estimate)
            except InsufficientQuotaError:
                continue
            reserved_in_flight[request_id] = admission.reserved
            await asyncio.sleep(0)
            actual = estimate + rng.randint(0, 10)  # never below the reservation
            await relay.finish(admission, actual)
            del reserved_in_flight[request_id]
            finished_spend += actual
            to_settle.append((request_id, actual))

    async def billing() -> None:
        spent = 0
        while not workers_done.is_set() or to_settle:
            batch = to_settle[:]
            del to_settle[: len(batch)]
            spent += sum(cost for _, cost in batch)
            event = settled(
                [rid for rid, _ in batch], spent=spent, token=token_quota, user=user_quota
            )
            await relay.settle(event)
            await other_relay.settle(event)
            await asyncio.sleep(0.001)

    async def checker() -> None:
        while not workers_done.is_set():
            for account, quota in ((TOKEN, token_quota), (USER, user_quota)):
                truth = quota - finished_spend - sum(reserved_in_flight.values())
                held = await relay.balance_view(account)
                assert held is not None
                if held.available > truth:
                    violations.append(f"{account}: available {held.available} > truth {truth}")
            await asyncio.sleep(0)

    async def run_workers() -> None:
        await asyncio.gather(*(worker() for _ in range(12)))
        workers_done.set()

    await asyncio.gather(run_workers(), billing(), checker())

    assert violations == []
    assert finished_spend > 0
    assert await view(relay, TOKEN) == (token_quota - finished_spend, 0)
    assert await view(relay, USER) == (user_quota - finished_spend, 0)


# --- balances ----------------------------------------------------------------------------------


async def test_an_older_read_never_overwrites_newer_knowledge(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()

    assert await ledger.observe(USER, 1_000, 10)
    assert not await ledger.observe(USER, 2_000, 5)
    assert await view(ledger, USER) == (1_000, 0)
    assert await ledger.observe(USER, 1_500, 10)  # same version: an admin's top-up
    assert await ledger.observe(USER, 1_400, 11)
    assert await view(ledger, USER) == (1_400, 0)


async def test_forget_drops_the_balance_and_keeps_the_pending_spend(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(), token=5_000, user=1_000, version=10)
    await admit(ledger, "r1", 100)

    await ledger.forget(USER)

    assert not await ledger.known(USER)
    assert await ledger.balance_view(USER) is None
    with pytest.raises(UnknownAccountError):
        await admit(ledger, "r2", 100)
    assert not await ledger.observe(USER, 9_999, 9)  # a stale read stays out
    assert await ledger.observe(USER, 2_000, 10)
    assert await view(ledger, USER) == (2_000, 100)


async def test_a_balance_goes_stale_and_an_older_read_vouches_for_it(
    make_ledger: LedgerFactory,
) -> None:
    ledger = make_ledger(balance_ttl=0.2)
    await ledger.observe(USER, 1_000, 10)
    assert await ledger.known(USER)

    async def stale() -> bool:
        return not await ledger.known(USER)

    await eventually(stale, message="the balance to go stale")
    # The database read is older than what the ledger holds: the held one is fresh again.
    assert not await ledger.observe(USER, 5_000, 9)
    assert await ledger.known(USER)
    assert await view(ledger, USER) == (1_000, 0)


# --- expiry ------------------------------------------------------------------------------------


async def test_a_lost_reservation_expires_and_frees_its_amount(make_ledger: LedgerFactory) -> None:
    ledger = await opened(make_ledger(reservation_ttl=0.3), token=5_000, user=150)
    await admit(ledger, "crashed", 100)
    with pytest.raises(InsufficientUserQuota):
        await admit(ledger, "r2", 100)

    async def admitted_again() -> bool:
        try:
            await admit(ledger, "r2", 100)
        except InsufficientUserQuota:
            return False
        return True

    await eventually(admitted_again, message="the lost reservation to expire")
    assert await view(ledger, USER) == (150, 100)
    assert await view(ledger, TOKEN) == (5_000, 100)


async def test_finished_spend_whose_settlement_never_comes_expires(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(finished_ttl=0.3), token=5_000, user=5_000)
    await ledger.finish(await admit(ledger, "lost", 100), 70)
    assert await view(ledger, USER) == (5_000, 70)

    async def freed() -> bool:
        return await view(ledger, USER) == (5_000, 0)

    await eventually(freed, message="the unsettled spend to expire")
    assert await view(ledger, TOKEN) == (5_000, 0)
    assert await ledger.settle(settled(["lost"], spent=70, token=5_000, user=5_000)) == 0


async def test_a_request_that_outlives_its_reservation_still_counts_its_cost(
    make_ledger: LedgerFactory,
) -> None:
    ledger = await opened(make_ledger(reservation_ttl=0.2), token=5_000, user=5_000)
    long_request = await admit(ledger, "long", 100)

    async def expired() -> bool:
        return await view(ledger, USER) == (5_000, 0)

    await eventually(expired, message="the reservation to expire")
    await ledger.finish(long_request, 80)

    assert await view(ledger, USER) == (5_000, 80)
    assert await ledger.settle(settled(["long"], spent=80, token=5_000, user=5_000)) == 1
    assert await view(ledger, USER) == (4_920, 0)


# --- bounds and concurrency --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scenario", ["limited token", "unlimited token", "exact estimates"])
async def test_overshoot_is_bounded_by_the_in_flight_excess(
    make_ledger: LedgerFactory, scenario: str, seed: int
) -> None:
    """Invariant 3: spend past a quota <= sum over the requests in flight at the last
    admission of (cost - reservation). When every request costs its estimate, nothing."""
    rng = random.Random(seed)
    unlimited = scenario == "unlimited token"
    token_quota = RICH if unlimited else 2_000
    user_quota = 20_000 if unlimited else RICH
    limited_quota = user_quota if unlimited else token_quota
    ledger = await opened(make_ledger(), token=token_quota, user=user_quota)
    in_flight: dict[str, Admission] = {}
    cost: dict[str, int] = {}
    reserved: dict[str, int] = {}
    last_in_flight: set[str] = set()
    unsettled: list[str] = []
    spent_settled = 0

    async def finish(request_id: str) -> None:
        admission = in_flight.pop(request_id)
        if scenario == "exact estimates":
            cost[request_id] = admission.estimate
        else:
            cost[request_id] = rng.randint(0, 3 * admission.estimate)
        await ledger.finish(admission, cost[request_id])
        unsettled.append(request_id)

    for step in range(600):
        roll = rng.random()
        if roll < 0.5:
            request_id = f"r{step}"
            # Exact estimates: above 1% of the quota, so that none is trusted (reserved 0).
            low = 21 if scenario == "exact estimates" else 1
            estimate = rng.randint(low, 600 if unlimited else 60)
            try:
                admission = await admit(ledger, request_id, estimate, token_unlimited=unlimited)
            except InsufficientQuotaError:
                continue
            in_flight[request_id] = admission
            reserved[request_id] = admission.reserved
            last_in_flight = set(in_flight)
        elif roll < 0.85 and in_flight:
            await finish(rng.choice(sorted(in_flight)))
        elif unsettled:
            batch = unsettled[: rng.randint(1, len(unsettled))]
            del unsettled[: len(batch)]
            spent_settled += sum(cost[r] for r in batch)
            await ledger.settle(
                settled(batch, spent=spent_settled, token=token_quota, user=user_quota)
            )
    for request_id in sorted(in_flight):
        await finish(request_id)

    total = sum(cost.values())
    bound = sum(cost[r] - reserved[r] for r in last_in_flight)
    assert total - limited_quota <= bound
    if scenario == "exact estimates":
        assert total <= limited_quota
    held = await view(ledger, USER if unlimited else TOKEN)
    assert held == (limited_quota - spent_settled, total - spent_settled)


@pytest.mark.parametrize("limit", ["token", "user"])
async def test_two_relays_admit_exactly_what_the_balance_covers(
    redis_ledgers: Callable[..., RedisLedger], limit: str
) -> None:
    estimate, covered = 7, 37
    relays = [redis_ledgers(), redis_ledgers()]
    quota = estimate * covered
    await opened(
        relays[0],
        token=quota if limit == "token" else RICH,
        user=quota if limit == "user" else RICH,
    )

    outcomes = await asyncio.gather(
        *(admit(relays[i % 2], f"r{i}", estimate) for i in range(200)), return_exceptions=True
    )

    admitted = [outcome for outcome in outcomes if isinstance(outcome, Admission)]
    refused = [outcome for outcome in outcomes if not isinstance(outcome, Admission)]
    expected_refusal = InsufficientTokenQuota if limit == "token" else InsufficientUserQuota
    assert len(admitted) == covered
    assert all(isinstance(outcome, expected_refusal) for outcome in refused)
    limited = TOKEN if limit == "token" else USER
    for relay in relays:
        assert await view(relay, limited) == (quota, quota)


# --- Redis specifics ---------------------------------------------------------------------------


async def test_every_redis_key_shares_one_slot_under_the_cache_prefix(
    redis_url: str,
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    cache = RedisCache(client, prefix="oneapi:ns:")
    try:
        ledger = RedisLedger(cache, finished_ttl=60, reservation_ttl=60)
        await opened(ledger, token=1_000, user=1_000)
        await ledger.finish(await admit(ledger, "r1", 10), 5)
        await admit(ledger, "r2", 10)

        keys = sorted(key.decode() for key in await client.keys("*") if isinstance(key, bytes))
        assert keys == [
            "oneapi:ns:{quota}:expiries",
            "oneapi:ns:{quota}:records",
            "oneapi:ns:{quota}:t:7",
            "oneapi:ns:{quota}:u:3",
        ]
        assert len({key_slot(key.encode()) for key in keys}) == 1
        # Account keys expire when idle, records never outlive them.
        for key in keys[2:]:
            assert 0 < await client.pttl(key) <= 24 * 3600 * 1000
    finally:
        await cache.close()


async def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    cache = RedisCache(redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    try:
        with pytest.raises(LedgerUnavailable):
            await RedisLedger(cache).observe(USER, 1, 0)
    finally:
        await cache.close()


async def test_ledger_for_follows_the_cache(redis_url: str) -> None:
    assert isinstance(ledger_for(InProcessCache()), InProcessLedger)
    cache = RedisCache(redis.asyncio.Redis.from_url(redis_url))
    try:
        assert isinstance(ledger_for(cache), RedisLedger)
    finally:
        await cache.close()
