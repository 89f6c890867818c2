"""`/api/token`: a user's own API tokens, One API's rules, and relays told of every change."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from libs.common.db.models import Token, TokenStatus, UserRole
from libs.common.events import ConfigChanged
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

KEY = re.compile(r"[A-Za-z0-9]{48}")


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    token: dict[str, Any] = assert_ok(await client.post("/api/token/", json={"name": "t"} | fields))
    return token


async def announced(admin: AdminHarness, token: dict[str, Any], times: int) -> None:
    """Wait until `config.changed` named this token, by id and key, `times` times in all."""

    def count() -> int:
        return sum(
            change.entity == "token"
            and change.ids == [token["id"]]
            and change.keys == [token["key"]]
            for change in admin.config_changes
        )

    for _ in range(200):
        if count() >= times:
            break
        await asyncio.sleep(0.01)
    assert count() == times, admin.config_changes


async def stored(admin: AdminHarness, token_id: int) -> Token | None:
    async with admin.database.session() as session:
        return await session.get(Token, token_id)


async def stored_status(admin: AdminHarness, token_id: int) -> int:
    token = await stored(admin, token_id)
    assert token is not None
    return token.status


async def set_columns(admin: AdminHarness, token_id: int, **columns: Any) -> None:
    async with admin.database.session() as session:
        await session.execute(update(Token).where(Token.id == token_id).values(**columns))


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/token/"),
        ("GET", "/api/token/search?keyword=a"),
        ("GET", "/api/token/1"),
        ("POST", "/api/token/"),
        ("PUT", "/api/token/"),
        ("DELETE", "/api/token/1"),
    ],
)
async def test_a_guest_is_refused_with_401(admin: AdminHarness, method: str, path: str) -> None:
    body = {"id": 1, "name": "t"} if method in ("POST", "PUT") else None
    response = await admin.client().request(method, path, json=body)
    assert_refused(response, status_code=401, message="未登录")


# --- create ------------------------------------------------------------------------------------


async def test_creating_a_token_returns_it_with_its_key_as_one_api_does(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice", quota=0)
    before = int(time.time())
    token = await create(
        admin.client(alice),
        name="laptop",
        expired_time=-1,
        remain_quota=500_000,
        unlimited_quota=False,
        models=" gpt-4o, gpt-4o-mini,,gpt-4o ",
        subnet="10.0.0.0/8, 2001:db8::/32",
    )

    assert KEY.fullmatch(token["key"]), "48 letters and digits, without the sk- the UI shows"
    assert token["user_id"] == alice.id
    assert token["status"] == TokenStatus.ENABLED
    assert token["name"] == "laptop"
    assert token["expired_time"] == -1
    assert token["remain_quota"] == 500_000
    assert token["unlimited_quota"] is False
    assert token["used_quota"] == 0
    assert token["models"] == "gpt-4o,gpt-4o-mini"
    assert token["subnet"] == "10.0.0.0/8,2001:db8::/32"
    assert token["created_time"] >= before
    assert token["accessed_time"] == token["created_time"]
    row = await stored(admin, token["id"])
    assert row is not None
    assert (row.key, row.user_id) == (token["key"], alice.id)
    # A token's quota is its own budget, not bounded by the owner's (One API): alice has none.
    assert row.remain_quota == 500_000


async def test_token_keys_are_48_letters_and_digits_and_all_different(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    tokens = await asyncio.gather(*(create(client, name=f"t{i}") for i in range(20)))
    keys = [token["key"] for token in tokens]
    assert all(KEY.fullmatch(key) for key in keys), keys
    assert len(set(keys)) == len(keys)
    # Not a counter or a clock: the keys share no common prefix.
    assert len({key[:4] for key in keys}) > 1


async def test_creating_a_token_is_announced_with_its_key_once_committed(
    admin: AdminHarness,
) -> None:
    visible_on_announce: list[bool] = []

    async def on_change(event: ConfigChanged) -> None:
        if event.entity == "token":
            async with admin.database.session() as session:
                found = await session.scalar(select(Token.id).where(Token.key.in_(event.keys)))
            visible_on_announce.append(found is not None)

    await admin.bus.subscribe(ConfigChanged, on_change)
    token = await create(admin.client(await admin.add_user("alice")))

    await announced(admin, token, times=1)
    for _ in range(200):
        if visible_on_announce:
            break
        await asyncio.sleep(0.01)
    assert visible_on_announce == [True], "a relay reloading on the event must find the token"


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"name": "x" * 31}, "name"),
        ({"subnet": "10.0.0.0/8,10.0.0.300/32"}, "无效的网段：10.0.0.300/32"),
        ({"subnet": "office"}, "无效的网段"),
        ({"remain_quota": -1}, "remain_quota"),
        ({"remain_quota": 2**63}, "remain_quota"),
        ({"expired_time": -2}, "expired_time"),
        ({"name": "nul\x00byte"}, "name"),
    ],
)
async def test_invalid_token_fields_are_refused_in_the_envelope(
    admin: AdminHarness, fields: dict[str, Any], complaint: str
) -> None:
    alice = await admin.add_user("alice")
    response = await admin.client(alice).post("/api/token/", json={"name": "t"} | fields)
    assert_refused(response, message=complaint)
    assert assert_ok(await admin.client(alice).get("/api/token/")) == []


async def test_a_name_of_30_characters_is_accepted(admin: AdminHarness) -> None:
    client = admin.client(await admin.add_user("alice"))
    assert (await create(client, name="令" * 30))["name"] == "令" * 30


# --- read --------------------------------------------------------------------------------------


async def test_the_list_holds_only_the_callers_tokens_newest_first_by_pages_of_10(
    admin: AdminHarness,
) -> None:
    alice, bob = await admin.add_user("alice"), await admin.add_user("bob")
    ids = [(await create(admin.client(alice), name=f"a{i}"))["id"] for i in range(11)]
    await create(admin.client(bob), name="bob's")

    first = assert_ok(await admin.client(alice).get("/api/token/", params={"p": 0}))
    second = assert_ok(await admin.client(alice).get("/api/token/", params={"p": 1}))
    assert [token["id"] for token in first + second] == sorted(ids, reverse=True)
    assert len(first) == 10
    assert all(token["user_id"] == alice.id for token in first + second)
    assert assert_ok(await admin.client(alice).get("/api/token/", params={"p": 2})) == []


async def test_the_list_orders_by_remaining_or_used_quota(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    client = admin.client(alice)
    small = await create(client, name="small", remain_quota=10)
    large = await create(client, name="large", remain_quota=1000)
    unlimited = await create(client, name="unlimited", remain_quota=0, unlimited_quota=True)
    await set_columns(admin, small["id"], used_quota=900)
    await set_columns(admin, large["id"], used_quota=5)

    def names(response: httpx.Response) -> list[str]:
        return [token["name"] for token in assert_ok(response)]

    by_remaining = await client.get("/api/token/", params={"order": "remain_quota"})
    assert names(by_remaining) == ["unlimited", "large", "small"]
    by_used = await client.get("/api/token/", params={"order": "used_quota"})
    assert names(by_used) == ["small", "large", "unlimited"]
    newest_first = await client.get("/api/token/", params={"order": "anything else"})
    assert names(newest_first) == ["unlimited", "large", "small"]
    assert unlimited["id"] > large["id"] > small["id"]


async def test_search_matches_a_name_prefix_or_the_key_among_the_callers_tokens(
    admin: AdminHarness,
) -> None:
    alice, bob = await admin.add_user("alice"), await admin.add_user("bob")
    laptop = await create(admin.client(alice), name="laptop")
    await create(admin.client(alice), name="lab 100%")
    server = await create(admin.client(alice), name="server")
    await create(admin.client(bob), name="laptop of bob")
    client = admin.client(alice)

    async def search(keyword: str) -> list[str]:
        response = await client.get("/api/token/search", params={"keyword": keyword})
        return sorted(token["name"] for token in assert_ok(response))

    assert await search("la") == ["lab 100%", "laptop"]
    assert await search("top") == []  # a prefix, as One API
    assert await search("lab 100%") == ["lab 100%"]
    assert await search("%") == []  # wildcards are literal
    assert await search(server["key"]) == ["server"]
    assert await search("sk-" + laptop["key"]) == ["laptop"]
    bob_client = admin.client(bob)
    found = await bob_client.get("/api/token/search", params={"keyword": server["key"]})
    assert assert_ok(found) == []


async def test_a_token_is_read_by_id(admin: AdminHarness) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="laptop", remain_quota=7)
    assert assert_ok(await client.get(f"/api/token/{token['id']}")) == token
    assert_refused(await client.get("/api/token/999999"), message="令牌不存在")
    assert_refused(await client.get("/api/token/abc"), message="token_id")


# --- another user's token ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [UserRole.COMMON, UserRole.ROOT])
async def test_nobody_reads_changes_or_deletes_another_users_token(
    admin: AdminHarness, role: int
) -> None:
    bob = await admin.add_user("bob")
    token = await create(admin.client(bob), name="bob's", remain_quota=100)
    intruder = admin.root if role == UserRole.ROOT else await admin.add_user("mallory", role=role)
    client = admin.client(intruder)

    assert_refused(await client.get(f"/api/token/{token['id']}"), message="令牌不存在")
    edit = {"id": token["id"], "name": "mine", "remain_quota": 10**9, "unlimited_quota": True}
    assert_refused(await client.put("/api/token/", json=edit), message="令牌不存在")
    disable = {"id": token["id"], "status": TokenStatus.DISABLED}
    response = await client.put("/api/token/", params={"status_only": "true"}, json=disable)
    assert_refused(response, message="令牌不存在")
    assert_refused(await client.delete(f"/api/token/{token['id']}"), message="令牌不存在")
    assert assert_ok(await client.get("/api/token/")) == []
    found = await client.get("/api/token/search", params={"keyword": "bob"})
    assert assert_ok(found) == []

    assert assert_ok(await admin.client(bob).get(f"/api/token/{token['id']}")) == token


# --- update ------------------------------------------------------------------------------------


async def test_editing_changes_the_fields_sent_keeps_the_status_and_is_announced(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="old", remain_quota=5, models="gpt-4o", subnet="10.0.0.0/8")
    await set_columns(admin, token["id"], status=TokenStatus.EXHAUSTED)

    edit = {
        "id": token["id"],
        "name": "new",
        "expired_time": 4_102_444_800,
        "remain_quota": 1_000_000,
        "unlimited_quota": True,
        "models": "",
        # status is not the edit form's to change, even when a script sends it.
        "status": TokenStatus.ENABLED,
    }
    edited = assert_ok(await client.put("/api/token/", json=edit))
    assert edited["name"] == "new"
    assert edited["expired_time"] == 4_102_444_800
    assert edited["remain_quota"] == 1_000_000
    assert edited["unlimited_quota"] is True
    assert edited["models"] == ""
    assert edited["subnet"] == "10.0.0.0/8", "a field left out keeps its value"
    assert edited["status"] == TokenStatus.EXHAUSTED
    assert edited["key"] == token["key"]
    assert assert_ok(await client.get(f"/api/token/{token['id']}")) == edited
    await announced(admin, token, times=2)  # created, edited


async def test_an_edit_with_a_bad_subnet_or_long_name_changes_nothing(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="laptop", subnet="10.0.0.0/8")
    bad_subnet = {"id": token["id"], "name": "x", "subnet": "10.0.0.0/33"}
    assert_refused(await client.put("/api/token/", json=bad_subnet), message="无效的网段")
    long_name = {"id": token["id"], "name": "x" * 31}
    assert_refused(await client.put("/api/token/", json=long_name), message="name")
    assert assert_ok(await client.get(f"/api/token/{token['id']}")) == token


async def test_status_only_disables_and_enables_and_touches_nothing_else(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="laptop", remain_quota=5)

    # The UI sends its whole row: with status_only, only the status is taken from it.
    row = token | {"status": TokenStatus.DISABLED, "name": "ignored", "remain_quota": 10**6}
    disabled = assert_ok(await client.put("/api/token/?status_only=true", json=row))
    assert disabled == token | {"status": TokenStatus.DISABLED}
    await announced(admin, token, times=2)  # created, disabled

    enable = {"id": token["id"], "status": TokenStatus.ENABLED}
    enabled = assert_ok(await client.put("/api/token/?status_only=true", json=enable))
    assert enabled["status"] == TokenStatus.ENABLED


@pytest.mark.parametrize("status", [TokenStatus.EXPIRED, TokenStatus.DISABLED])
async def test_an_expired_token_cannot_be_enabled_until_its_expiry_is_moved(
    admin: AdminHarness, status: int
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="old", remain_quota=5)
    await set_columns(admin, token["id"], expired_time=int(time.time()) - 1, status=status)

    enable = {"id": token["id"], "status": TokenStatus.ENABLED}
    response = await client.put("/api/token/?status_only=true", json=enable)
    assert_refused(
        response, message="令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期"
    )
    assert await stored_status(admin, token["id"]) == status

    assert_ok(await client.put("/api/token/", json={"id": token["id"], "expired_time": -1}))
    enabled = assert_ok(await client.put("/api/token/?status_only=true", json=enable))
    assert enabled["status"] == TokenStatus.ENABLED


async def test_an_exhausted_token_cannot_be_enabled_until_it_has_quota(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client, name="spent", remain_quota=1)
    await set_columns(admin, token["id"], remain_quota=0, status=TokenStatus.EXHAUSTED)

    enable = {"id": token["id"], "status": TokenStatus.ENABLED}
    response = await client.put("/api/token/?status_only=true", json=enable)
    assert_refused(response, message="令牌可用额度已用尽")
    assert await stored_status(admin, token["id"]) == TokenStatus.EXHAUSTED

    assert_ok(await client.put("/api/token/", json={"id": token["id"], "unlimited_quota": True}))
    enabled = assert_ok(await client.put("/api/token/?status_only=true", json=enable))
    assert enabled["status"] == TokenStatus.ENABLED


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"status": TokenStatus.EXHAUSTED}, "只能设为启用"),
        ({"status": TokenStatus.EXPIRED}, "只能设为启用"),
        ({}, "status"),
        ({"status": 9}, "status"),
    ],
)
async def test_status_only_sets_enabled_or_disabled_only(
    admin: AdminHarness, body: dict[str, Any], complaint: str
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client)
    response = await client.put("/api/token/?status_only=true", json={"id": token["id"]} | body)
    assert_refused(response, message=complaint)
    assert await stored_status(admin, token["id"]) == TokenStatus.ENABLED


# --- delete ------------------------------------------------------------------------------------


async def test_deleting_a_token_removes_it_and_is_announced_with_its_key(
    admin: AdminHarness,
) -> None:
    client = admin.client(await admin.add_user("alice"))
    token = await create(client)
    kept = await create(client, name="kept")

    assert assert_ok(await client.delete(f"/api/token/{token['id']}")) is None
    assert await stored(admin, token["id"]) is None
    await announced(admin, token, times=2)  # created, deleted
    assert [t["id"] for t in assert_ok(await client.get("/api/token/"))] == [kept["id"]]
    assert_refused(await client.delete(f"/api/token/{token['id']}"), message="令牌不存在")
