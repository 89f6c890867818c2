"""Money: `POST /api/topup` and quota edits through `PUT /api/user/` are exact."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from libs.common.db.models import LogType, User, UserRole
from services.admin.users.schemas import QUOTA_LIMIT
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused
from tests.services.admin.users.rows import load_user, logs_of, set_option, set_user


async def test_a_top_up_adds_exactly_and_is_logged_with_its_remark(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice", quota=1_000)
    client = admin.client(admin.root)
    body = {"user_id": alice.id, "quota": 250_000, "remark": "invoice 42"}
    assert assert_ok(await client.post("/api/topup", json=body)) is None

    assert (await load_user(admin, alice.id)).quota == 251_000
    [log] = await logs_of(admin, alice.id)
    assert (log.type, log.content, log.quota, log.username) == (
        LogType.TOPUP,
        "invoice 42",
        250_000,
        "alice",
    )
    assert (await admin.wait_for_change("user")).ids == [alice.id]


@pytest.mark.parametrize(
    ("in_currency", "content"),
    [("true", "通过 API 充值 ＄0.500000 额度"), ("false", "通过 API 充值 250000 点额度")],
)
async def test_a_top_up_without_remark_says_how_much(
    admin: AdminHarness, in_currency: str, content: str
) -> None:
    await set_option(admin, "DisplayInCurrencyEnabled", in_currency)
    alice = await admin.add_user("alice")
    body = {"user_id": alice.id, "quota": 250_000}
    assert_ok(await admin.client(admin.root).post("/api/topup", json=body))
    [log] = await logs_of(admin, alice.id)
    assert log.content == content


async def test_concurrent_top_ups_and_charges_all_count(admin: AdminHarness) -> None:
    """Top-ups are increments in the database: none is lost to another, nor to billing."""
    alice = await admin.add_user("alice", quota=10_000)
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    client = admin.client(boss)
    amounts = [1, 20, 300, 4_000, 50_000, 600_000]

    async def top_up(amount: int) -> None:
        assert_ok(await client.post("/api/topup", json={"user_id": alice.id, "quota": amount}))

    async def charge() -> None:  # what billing does meanwhile
        async with admin.database.session() as session:
            await session.execute(
                update(User).where(User.id == alice.id).values(quota=User.quota - 7)
            )

    await asyncio.gather(*(top_up(amount) for amount in amounts), charge())
    assert (await load_user(admin, alice.id)).quota == 10_000 + sum(amounts) - 7
    logged = sorted(log.quota for log in await logs_of(admin, alice.id))
    assert logged == amounts


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user_id": "{id}", "quota": -1}, "quota"),
        ({"user_id": "{id}", "quota": QUOTA_LIMIT + 1}, "quota"),
        ({"user_id": "{id}", "quota": "lots"}, "quota"),
        ({"user_id": "{id}"}, "quota"),
        ({"user_id": 0, "quota": 1}, "user_id"),
        ({"user_id": 999_999, "quota": 1}, "用户不存在"),
        ({"user_id": "{id}", "quota": 1, "remark": "r" * 1001}, "remark"),
    ],
)
async def test_a_top_up_refuses_bad_input_in_the_envelope(
    admin: AdminHarness, body: dict[str, object], message: str
) -> None:
    alice = await admin.add_user("alice", quota=5)
    body = {key: alice.id if value == "{id}" else value for key, value in body.items()}
    assert_refused(await admin.client(admin.root).post("/api/topup", json=body), message=message)
    assert (await load_user(admin, alice.id)).quota == 5
    assert await logs_of(admin, alice.id) == []


async def test_a_top_up_never_takes_a_balance_past_the_limit(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice", quota=QUOTA_LIMIT - 5)
    client = admin.client(admin.root)
    response = await client.post("/api/topup", json={"user_id": alice.id, "quota": 6})
    assert_refused(response, message="额度超出允许范围")
    assert (await load_user(admin, alice.id)).quota == QUOTA_LIMIT - 5
    assert_ok(await client.post("/api/topup", json={"user_id": alice.id, "quota": 5}))
    assert (await load_user(admin, alice.id)).quota == QUOTA_LIMIT


async def test_an_admin_cannot_top_up_itself(admin: AdminHarness) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN, quota=0)
    response = await admin.client(boss).post("/api/topup", json={"user_id": boss.id, "quota": 9})
    assert_refused(response, message="无权为同权限等级或更高权限等级的用户充值")
    assert (await load_user(admin, boss.id)).quota == 0


async def test_a_quota_edit_sets_the_value_and_logs_before_and_after(
    admin: AdminHarness,
) -> None:
    await set_option(admin, "DisplayInCurrencyEnabled", "false")
    alice = await admin.add_user("alice", quota=1_000)
    client = admin.client(admin.root)
    updated = assert_ok(await client.put("/api/user/", json={"id": alice.id, "quota": 123_456}))
    assert updated["quota"] == 123_456
    assert (await load_user(admin, alice.id)).quota == 123_456
    [log] = await logs_of(admin, alice.id)
    assert (log.type, log.content) == (
        LogType.MANAGE,
        "管理员将用户额度从 1000 点额度修改为 123456 点额度",
    )
    assert (await admin.wait_for_change("user")).ids == [alice.id]


async def test_an_edit_without_quota_leaves_the_balance_alone(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice", quota=1_000)
    client = admin.client(admin.root)
    profile = assert_ok(await client.get(f"/api/user/{alice.id}"))
    await set_user(admin, alice.id, quota=900)  # billing charges after the read
    profile.update(display_name="Alice", quota=None)
    assert_ok(await client.put("/api/user/", json=profile))
    row = await load_user(admin, alice.id)
    assert (row.display_name, row.quota) == ("Alice", 900)
    assert await logs_of(admin, alice.id) == []


async def test_a_quota_edit_may_set_a_debt_back_to_zero(admin: AdminHarness) -> None:
    await set_option(admin, "DisplayInCurrencyEnabled", "true")
    alice = await admin.add_user("alice", quota=-500)
    assert_ok(await admin.client(admin.root).put("/api/user/", json={"id": alice.id, "quota": 0}))
    assert (await load_user(admin, alice.id)).quota == 0
    [log] = await logs_of(admin, alice.id)
    assert log.content == "管理员将用户额度从 ＄-0.001000 额度修改为 ＄0.000000 额度"
