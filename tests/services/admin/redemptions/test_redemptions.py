"""`/api/redemption` (admins) and `/api/user/topup` (users): codes created, managed, redeemed."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from libs.common.db.models import (
    Log,
    LogType,
    Option,
    Redemption,
    RedemptionStatus,
    User,
    UserRole,
)
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

KEY = re.compile(r"[A-Za-z0-9]{32}")
INT64_MAX = 2**63 - 1


async def create_codes(
    client: httpx.AsyncClient, *, name: str = "promo", quota: int = 1000, count: int = 1
) -> list[str]:
    body = {"name": name, "quota": quota, "count": count}
    keys: list[str] = assert_ok(await client.post("/api/redemption/", json=body))
    return keys


async def code_row(admin: AdminHarness, key: str) -> Redemption:
    async with admin.database.session() as session:
        row = await session.scalar(select(Redemption).where(Redemption.key == key))
    assert row is not None
    return row


async def quota_of(admin: AdminHarness, user_id: int) -> int:
    async with admin.database.session() as session:
        quota = await session.scalar(select(User.quota).where(User.id == user_id))
    assert quota is not None
    return quota


async def topup_logs(admin: AdminHarness, user_id: int) -> list[Log]:
    async with admin.database.log_session() as session:
        rows = await session.scalars(
            select(Log).where(Log.user_id == user_id, Log.type == LogType.TOPUP)
        )
        return list(rows)


# --- permissions -------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/api/redemption/"),
    ("GET", "/api/redemption/search?keyword=a"),
    ("GET", "/api/redemption/1"),
    ("POST", "/api/redemption/"),
    ("PUT", "/api/redemption/"),
    ("DELETE", "/api/redemption/1"),
]


@pytest.mark.parametrize(("method", "path"), [*ADMIN_ROUTES, ("POST", "/api/user/topup")])
async def test_a_guest_is_refused_with_401(admin: AdminHarness, method: str, path: str) -> None:
    body = {"id": 1, "name": "x", "quota": 1, "count": 1, "key": "x"} if method != "GET" else None
    response = await admin.client().request(method, path, json=body)
    assert_refused(response, status_code=401, message="未登录")


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_a_common_user_cannot_manage_codes(
    admin: AdminHarness, method: str, path: str
) -> None:
    keys = await create_codes(admin.client(admin.root))
    alice = await admin.add_user("alice")
    body = {"id": 1, "name": "mine", "quota": 10**9, "count": 1} if method != "GET" else None
    response = await admin.client(alice).request(method, path, json=body)
    assert_refused(response, message="权限不足")
    row = await code_row(admin, keys[0])
    assert (row.name, row.quota, row.status) == ("promo", 1000, RedemptionStatus.ENABLED)


# --- create ------------------------------------------------------------------------------------


async def test_an_admin_creates_a_batch_of_codes_and_gets_their_keys(admin: AdminHarness) -> None:
    operator = await admin.add_user("operator", role=UserRole.ADMIN)
    before = int(time.time())
    keys = await create_codes(admin.client(operator), name="spring", quota=250_000, count=5)

    assert len(keys) == 5
    assert all(KEY.fullmatch(key) for key in keys), keys
    assert len(set(keys)) == 5
    for key in keys:
        row = await code_row(admin, key)
        assert row.name == "spring"
        assert row.quota == 250_000
        assert row.status == RedemptionStatus.ENABLED
        assert row.user_id == operator.id
        assert row.created_time >= before
        assert row.redeemed_time == 0


async def test_a_batch_of_100_codes_is_the_most(admin: AdminHarness) -> None:
    keys = await create_codes(admin.client(admin.root), count=100)
    assert len(set(keys)) == 100


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"name": ""}, "name"),
        ({"name": "x" * 21}, "name"),
        ({"quota": 0}, "quota"),
        ({"quota": -5}, "quota"),
        ({"quota": 2**63}, "quota"),
    ],
)
async def test_invalid_batches_are_refused_in_the_envelope_and_create_nothing(
    admin: AdminHarness, fields: dict[str, Any], complaint: str
) -> None:
    client = admin.client(admin.root)
    body = {"name": "promo", "quota": 1000, "count": 3} | fields
    assert_refused(await client.post("/api/redemption/", json=body), message=complaint)
    assert assert_ok(await client.get("/api/redemption/")) == []


# --- read --------------------------------------------------------------------------------------


async def test_codes_are_listed_newest_first_by_pages_of_10(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    await create_codes(client, name="old", count=6)
    await create_codes(client, name="new", count=6)

    first = assert_ok(await client.get("/api/redemption/", params={"p": 0}))
    second = assert_ok(await client.get("/api/redemption/", params={"p": 1}))
    ids = [row["id"] for row in first + second]
    assert len(first) == 10
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 12
    assert [row["name"] for row in first[:6]] == ["new"] * 6
    assert set(first[0]) == {
        "id",
        "user_id",
        "key",
        "status",
        "name",
        "quota",
        "created_time",
        "redeemed_time",
    }


async def test_search_matches_the_id_or_a_name_prefix(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    await create_codes(client, name="spring sale", count=2)
    [autumn] = await create_codes(client, name="autumn")
    # Not starting with a digit: ids grow across tests, and an id is also searched as a prefix.
    await create_codes(client, name="x50% off")
    autumn_id = (await code_row(admin, autumn)).id

    async def search(keyword: str) -> list[str]:
        response = await client.get("/api/redemption/search", params={"keyword": keyword})
        return sorted(row["name"] for row in assert_ok(response))

    assert await search("spring") == ["spring sale", "spring sale"]
    assert await search("sale") == []
    assert await search(str(autumn_id)) == ["autumn"]
    assert await search("x50%") == ["x50% off"]
    assert await search("x5_") == []
    assert await search("%") == []
    assert await search("99999999999999") == []


async def test_a_code_is_read_by_id(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    [key] = await create_codes(client, name="one", quota=42)
    row = await code_row(admin, key)
    code = assert_ok(await client.get(f"/api/redemption/{row.id}"))
    assert (code["key"], code["name"], code["quota"], code["status"]) == (key, "one", 42, 1)
    assert_refused(await client.get("/api/redemption/999999"), message="兑换码不存在")


# --- update and delete -------------------------------------------------------------------------


async def test_an_admin_renames_and_reprices_an_unused_code(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    [key] = await create_codes(client, name="old", quota=100)
    row = await code_row(admin, key)

    edited = assert_ok(
        await client.put("/api/redemption/", json={"id": row.id, "name": "new", "quota": 700})
    )
    assert (edited["name"], edited["quota"], edited["status"]) == ("new", 700, 1)
    assert edited["key"] == key
    assert (await code_row(admin, key)).quota == 700


async def test_status_only_disables_and_enables_an_unused_code(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    [key] = await create_codes(client, name="promo", quota=100)
    row = await code_row(admin, key)

    disable = {"id": row.id, "status": RedemptionStatus.DISABLED, "name": "ignored", "quota": 1}
    disabled = assert_ok(await client.put("/api/redemption/?status_only=true", json=disable))
    assert (disabled["status"], disabled["name"], disabled["quota"]) == (2, "promo", 100)
    again = await client.put("/api/redemption/?status_only=true", json=disable)
    assert assert_ok(again)["status"] == RedemptionStatus.DISABLED

    enable = {"id": row.id, "status": RedemptionStatus.ENABLED}
    enabled = assert_ok(await client.put("/api/redemption/?status_only=true", json=enable))
    assert enabled["status"] == RedemptionStatus.ENABLED

    used = {"id": row.id, "status": RedemptionStatus.USED}
    response = await client.put("/api/redemption/?status_only=true", json=used)
    assert_refused(response, message="只能设为启用")


async def test_a_used_code_cannot_be_reenabled_or_repriced_but_can_be_renamed(
    admin: AdminHarness,
) -> None:
    client = admin.client(admin.root)
    [key] = await create_codes(client, quota=100)
    alice = await admin.add_user("alice")
    assert assert_ok(await admin.client(alice).post("/api/user/topup", json={"key": key})) == 100
    code_id = (await code_row(admin, key)).id

    for status in (RedemptionStatus.ENABLED, RedemptionStatus.DISABLED):
        body = {"id": code_id, "status": status}
        response = await client.put("/api/redemption/?status_only=true", json=body)
        assert_refused(response, message="已被使用")
    reprice = {"id": code_id, "name": "promo", "quota": 10**6}
    assert_refused(await client.put("/api/redemption/", json=reprice), message="已被使用")
    row = await code_row(admin, key)
    assert (row.status, row.quota) == (RedemptionStatus.USED, 100)

    renamed = assert_ok(
        await client.put("/api/redemption/", json={"id": code_id, "name": "given", "quota": 100})
    )
    assert (renamed["name"], renamed["status"], renamed["user_id"]) == ("given", 3, alice.id)
    assert_refused(await admin.client(alice).post("/api/user/topup", json={"key": key}))
    assert await quota_of(admin, alice.id) == 100


async def test_an_update_of_a_missing_code_is_not_found(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    edit = {"id": 999999, "name": "x", "quota": 1}
    assert_refused(await client.put("/api/redemption/", json=edit), message="兑换码不存在")
    status = {"id": 999999, "status": 2}
    response = await client.put("/api/redemption/?status_only=true", json=status)
    assert_refused(response, message="兑换码不存在")


async def test_a_deleted_code_is_gone_and_cannot_be_redeemed(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    [key, kept] = await create_codes(client, count=2)
    code_id = (await code_row(admin, key)).id

    assert assert_ok(await client.delete(f"/api/redemption/{code_id}")) is None
    assert [row["key"] for row in assert_ok(await client.get("/api/redemption/"))] == [kept]
    assert_refused(await client.delete(f"/api/redemption/{code_id}"), message="兑换码不存在")
    alice = admin.client(await admin.add_user("alice"))
    assert_refused(await alice.post("/api/user/topup", json={"key": key}), message="无效的兑换码")


# --- redeem ------------------------------------------------------------------------------------


async def test_redeeming_credits_the_exact_quota_once_and_logs_it(admin: AdminHarness) -> None:
    [key] = await create_codes(admin.client(admin.root), quota=1_234_567)
    alice = await admin.add_user("alice", quota=1_000_001)
    before = int(time.time())

    response = await admin.client(alice).post("/api/user/topup", json={"key": f" {key}\n"})
    assert assert_ok(response) == 1_234_567
    assert await quota_of(admin, alice.id) == 2_234_568

    row = await code_row(admin, key)
    assert row.status == RedemptionStatus.USED
    assert row.user_id == alice.id
    assert row.redeemed_time >= before
    [log] = await topup_logs(admin, alice.id)
    # 1,234,567 quota at 500,000 per dollar: One API's log shows the amount in dollars.
    assert log.content == "通过兑换码充值 ＄2.469134 额度"
    assert log.username == "alice"
    change = await admin.wait_for_change("user")
    assert change.ids == [alice.id]

    again = await admin.client(alice).post("/api/user/topup", json={"key": key})
    assert_refused(again, message="兑换失败，该兑换码已被使用")
    assert await quota_of(admin, alice.id) == 2_234_568
    assert len(await topup_logs(admin, alice.id)) == 1


async def test_the_topup_log_shows_quota_points_when_currency_display_is_off(
    admin: AdminHarness,
) -> None:
    async with admin.database.session() as session:
        session.add(Option(key="DisplayInCurrencyEnabled", value="false"))
    [key] = await create_codes(admin.client(admin.root), quota=75)
    alice = await admin.add_user("alice")
    assert assert_ok(await admin.client(alice).post("/api/user/topup", json={"key": key})) == 75
    [log] = await topup_logs(admin, alice.id)
    assert log.content == "通过兑换码充值 75 点额度"


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        ("", "未提供兑换码"),
        ("   ", "未提供兑换码"),
        ("NoSuchCode0000000000000000000000", "兑换失败，无效的兑换码"),
        ("x\x00", "key"),
        ("x" * 129, "key"),
    ],
)
async def test_an_invalid_code_is_refused_with_a_clear_message(
    admin: AdminHarness, key: str, complaint: str
) -> None:
    alice = await admin.add_user("alice", quota=5)
    response = await admin.client(alice).post("/api/user/topup", json={"key": key})
    assert_refused(response, message=complaint)
    assert await quota_of(admin, alice.id) == 5


async def test_a_disabled_code_is_refused_and_stays_unused(admin: AdminHarness) -> None:
    root = admin.client(admin.root)
    [key] = await create_codes(root, quota=100)
    code_id = (await code_row(admin, key)).id
    disable = {"id": code_id, "status": RedemptionStatus.DISABLED}
    assert_ok(await root.put("/api/redemption/?status_only=true", json=disable))

    alice = await admin.add_user("alice")
    response = await admin.client(alice).post("/api/user/topup", json={"key": key})
    assert_refused(response, message="兑换失败，该兑换码已被禁用")
    row = await code_row(admin, key)
    assert (row.status, row.user_id, row.redeemed_time) == (
        RedemptionStatus.DISABLED,
        admin.root.id,
        0,
    )
    assert await quota_of(admin, alice.id) == 0


async def test_concurrent_redemptions_of_one_code_credit_it_once(admin: AdminHarness) -> None:
    [key] = await create_codes(admin.client(admin.root), quota=300)
    alice = await admin.add_user("alice", quota=10)
    bob = await admin.add_user("bob", quota=20)
    requests = [
        admin.client(user).post("/api/user/topup", json={"key": key})
        for user in (alice, bob, alice, bob)
    ]

    responses = await asyncio.gather(*requests)

    bodies = [response.json() for response in responses]
    assert all(response.status_code == 200 for response in responses), bodies
    winners = [body for body in bodies if body["success"]]
    assert len(winners) == 1, bodies
    assert winners[0]["data"] == 300
    losers = [body["message"] for body in bodies if not body["success"]]
    assert losers == ["兑换失败，该兑换码已被使用"] * 3
    quotas = (await quota_of(admin, alice.id), await quota_of(admin, bob.id))
    assert sum(quotas) == 10 + 20 + 300
    assert quotas in ((310, 20), (10, 320))
    winner_id = alice.id if quotas[0] == 310 else bob.id
    assert (await code_row(admin, key)).user_id == winner_id
    logs = await topup_logs(admin, alice.id) + await topup_logs(admin, bob.id)
    assert [log.user_id for log in logs] == [winner_id]


async def test_a_credit_that_would_overflow_the_quota_is_refused_and_keeps_the_code(
    admin: AdminHarness,
) -> None:
    [key] = await create_codes(admin.client(admin.root), quota=100)
    alice = await admin.add_user("alice", quota=INT64_MAX - 99)

    response = await admin.client(alice).post("/api/user/topup", json={"key": key})
    assert_refused(response, message="超出上限")
    assert await quota_of(admin, alice.id) == INT64_MAX - 99
    row = await code_row(admin, key)
    assert (row.status, row.redeemed_time) == (RedemptionStatus.ENABLED, 0)
    assert await topup_logs(admin, alice.id) == []

    async with admin.database.session() as session:
        await session.execute(update(User).where(User.id == alice.id).values(quota=0))
    assert assert_ok(await admin.client(alice).post("/api/user/topup", json={"key": key})) == 100
