"""User management by administrators: `/api/user/` list, search, get, create, update, delete,
manage, and who may do what to whom."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from libs.common.db.models import LogType, Token, User, UserRole, UserStatus
from libs.common.events import ConfigChanged
from services.admin.security import verify_password
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused
from tests.services.admin.users.rows import load_user, logs_of, set_option, set_user

if TYPE_CHECKING:
    from tests.services.admin.harness import TestUser

TARGETED_ROUTES = [
    ("GET", "/api/user/{id}", None),
    ("PUT", "/api/user/", {"id": "{id}", "display_name": "x"}),
    ("DELETE", "/api/user/{id}", None),
    ("POST", "/api/user/manage", {"username": "{username}", "action": "disable"}),
    ("POST", "/api/topup", {"user_id": "{id}", "quota": 10}),
]
"""The admin routes that act on one user."""
ADMIN_ROUTES = [
    ("GET", "/api/user/?p=0", None),
    ("GET", "/api/user/search?keyword=a", None),
    ("POST", "/api/user/", {"username": "newbie", "password": "password1"}),
    *TARGETED_ROUTES,
]


async def _call(
    client: httpx.AsyncClient, route: tuple[str, str, Any], target: TestUser
) -> httpx.Response:
    method, path, body = route
    if isinstance(body, dict):
        fill = {"{id}": target.id, "{username}": target.username}
        body = {key: fill.get(value, value) for key, value in body.items()}
    return await client.request(method, path.replace("{id}", str(target.id)), json=body)


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: f"{route[0]} {route[1]}")
async def test_guests_get_401_and_common_users_are_refused(
    admin: AdminHarness, route: tuple[str, str, Any]
) -> None:
    alice = await admin.add_user("alice")
    bob = await admin.add_user("bob")
    assert_refused(await _call(admin.client(), route, bob), status_code=401)
    assert_refused(await _call(admin.client(alice), route, bob), message="权限不足")
    assert (await load_user(admin, bob.id)).status == UserStatus.ENABLED


@pytest.mark.parametrize("route", TARGETED_ROUTES, ids=lambda route: f"{route[0]} {route[1]}")
@pytest.mark.parametrize("target_role", ["root", "other admin", "self"])
async def test_an_admin_cannot_act_on_root_another_admin_or_itself(
    admin: AdminHarness, route: tuple[str, str, Any], target_role: str
) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    targets = {
        "root": admin.root,
        "other admin": await admin.add_user("peer", role=UserRole.ADMIN),
        "self": boss,
    }
    target = targets[target_role]
    before = await load_user(admin, target.id)
    assert_refused(await _call(admin.client(boss), route, target), message="权")
    after = await load_user(admin, target.id)
    assert (after.status, after.display_name, after.quota) == (
        before.status,
        before.display_name,
        before.quota,
    )


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: f"{route[0]} {route[1]}")
async def test_root_may_act_on_an_admin(admin: AdminHarness, route: tuple[str, str, Any]) -> None:
    peer = await admin.add_user("peer", role=UserRole.ADMIN)
    assert_ok(await _call(admin.client(admin.root), route, peer))


async def test_the_list_pages_hides_secrets_and_deleted_users(admin: AdminHarness) -> None:
    for index in range(12):
        await admin.add_user(f"user{index:02d}", quota=index)
    gone = await admin.add_user("gone")
    client = admin.client(admin.root)
    assert_ok(await client.delete(f"/api/user/{gone.id}"))

    first = assert_ok(await client.get("/api/user/"))
    second = assert_ok(await client.get("/api/user/?p=1"))
    assert [user["username"] for user in first][:2] == ["user11", "user10"]
    assert len(first) == 10
    assert len(second) == 3  # two users and root
    assert gone.id not in {user["id"] for user in first + second}
    for user in first:
        assert "password" not in user
        assert "access_token" not in user


@pytest.mark.parametrize(
    ("order", "column"),
    [("quota", "quota"), ("used_quota", "used_quota"), ("request_count", "request_count")],
)
async def test_the_list_sorts_by_one_apis_columns(
    admin: AdminHarness, order: str, column: str
) -> None:
    for value, name in [(5, "mid"), (9, "top"), (1, "low")]:
        await admin.add_user(name, **{column: value})
    users = assert_ok(await admin.client(admin.root).get(f"/api/user/?order={order}"))
    names = [user["username"] for user in users if user["username"] != "root"]
    assert names == ["top", "mid", "low"]


async def test_search_matches_id_and_the_start_of_names_and_email(admin: AdminHarness) -> None:
    alice = await admin.add_user("Alice", email="wonder@example.com")
    alfred = await admin.add_user("alfred")
    await set_user(admin, alfred.id, display_name="Butler")
    await admin.add_user("a_b")
    await admin.add_user("axb")
    client = admin.client(admin.root)

    async def found(keyword: str) -> set[str]:
        users = assert_ok(await client.get("/api/user/search", params={"keyword": keyword}))
        return {user["username"] for user in users}

    assert await found("al") == {"Alice", "alfred"}
    assert await found("wonder") == {"Alice"}
    assert await found("butl") == {"alfred"}
    assert await found(str(alice.id)) == {"Alice"}
    assert await found("a_") == {"a_b"}  # "_" is not a wildcard
    assert await found("nobody") == set()
    assert await found("9" * 30) == set()


async def test_get_shows_a_lower_ranked_user_without_secrets(admin: AdminHarness) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    alice = await admin.add_user("alice", quota=77)
    user = assert_ok(await admin.client(boss).get(f"/api/user/{alice.id}"))
    assert (user["username"], user["quota"]) == ("alice", 77)
    assert "password" not in user
    assert "access_token" not in user
    assert_refused(await admin.client(boss).get("/api/user/999999"), message="用户不存在")
    assert_refused(await admin.client(boss).get("/api/user/0"), message="user_id")


async def test_an_admin_creates_a_common_user_with_the_new_user_quota(admin: AdminHarness) -> None:
    await set_option(admin, "QuotaForNewUser", "5000")
    await set_option(admin, "DisplayInCurrencyEnabled", "false")
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    body = {"username": "carol", "password": "carol pass", "role": 1}
    created = assert_ok(await admin.client(boss).post("/api/user/", json=body))

    row = await load_user(admin, created["id"])
    assert (row.username, row.display_name, row.role, row.quota) == ("carol", "carol", 1, 5000)
    assert verify_password("carol pass", row.password)
    assert row.aff_code
    [log] = await logs_of(admin, row.id)
    assert (log.type, log.content) == (LogType.SYSTEM, "新用户注册赠送 5000 点额度")
    # Like a registration, the user can call the API at once with a default token.
    async with admin.database.session() as session:
        tokens = (await session.scalars(select(Token).where(Token.user_id == row.id))).all()
    assert [(t.name, t.unlimited_quota, len(t.key)) for t in tokens] == [("default", True, 48)]


@pytest.mark.parametrize("role", [UserRole.ADMIN, UserRole.ROOT])
async def test_an_admin_cannot_create_a_user_of_its_rank_or_above(
    admin: AdminHarness, role: int
) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    body = {"username": "carol", "password": "carol pass", "role": role}
    response = await admin.client(boss).post("/api/user/", json=body)
    assert_refused(response, message="无法创建权限大于等于自己的用户")


async def test_root_asking_for_an_admin_still_creates_a_common_user(admin: AdminHarness) -> None:
    body = {"username": "carol", "password": "carol pass", "display_name": "C", "role": 10}
    created = assert_ok(await admin.client(admin.root).post("/api/user/", json=body))
    assert (created["role"], created["display_name"]) == (UserRole.COMMON, "C")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "", "password": "password1"}, "username"),
        ({"username": "x" * 13, "password": "password1"}, "username"),
        ({"username": "carol", "password": "short"}, "password"),
        ({"username": "carol"}, "password"),
        ({"username": "root", "password": "password1"}, "用户名已存在"),
    ],
)
async def test_create_refuses_bad_input_in_the_envelope(
    admin: AdminHarness, body: dict[str, Any], message: str
) -> None:
    response = await admin.client(admin.root).post("/api/user/", json=body)
    assert_refused(response, message=message)


async def test_an_admin_edits_a_common_user(admin: AdminHarness) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    alice = await admin.add_user("alice")
    body = {
        "id": alice.id,
        "username": "alice2",
        "display_name": "Alice",
        "password": "new password",
        "group": "vip",
        # What One API's edit page sends back besides; none of it may change.
        "email": "x@example.com",
        "status": 2,
        "access_token": "stolen",
    }
    updated = assert_ok(await admin.client(boss).put("/api/user/", json=body))
    assert (updated["username"], updated["display_name"], updated["group"]) == (
        "alice2",
        "Alice",
        "vip",
    )
    row = await load_user(admin, alice.id)
    assert verify_password("new password", row.password)
    assert (row.email, row.status, row.access_token) == ("", 1, alice.access_token)
    assert (await admin.wait_for_change("user")).ids == [alice.id]


async def test_edits_refuse_raising_a_role_to_the_editors_own(admin: AdminHarness) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    alice = await admin.add_user("alice")
    response = await admin.client(boss).put("/api/user/", json={"id": alice.id, "role": 10})
    assert_refused(response, message="无权将其他用户权限等级提升到大于等于自己的权限等级")
    assert (await load_user(admin, alice.id)).role == UserRole.COMMON
    assert_ok(await admin.client(admin.root).put("/api/user/", json={"id": alice.id, "role": 10}))
    assert (await load_user(admin, alice.id)).role == UserRole.ADMIN


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"display_name": "x"}, "id"),
        ({"id": 0}, "id"),
        ({"id": "{id}", "username": "y" * 13}, "username"),
        ({"id": "{id}", "password": "1234567"}, "password"),
        ({"id": "{id}", "quota": 2**53}, "quota"),
        ({"id": "{id}", "role": 5}, "role"),
        ({"id": "{id}", "username": "root"}, "用户名已存在"),
        ({"id": 999999}, "用户不存在"),
    ],
)
async def test_edit_refuses_bad_input_in_the_envelope(
    admin: AdminHarness, body: dict[str, Any], message: str
) -> None:
    alice = await admin.add_user("alice")
    body = {key: alice.id if value == "{id}" else value for key, value in body.items()}
    response = await admin.client(admin.root).put("/api/user/", json=body)
    assert_refused(response, message=message)
    assert (await load_user(admin, alice.id)).username == "alice"


async def test_an_admin_deletes_a_common_user(admin: AdminHarness) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    alice = await admin.add_user("alice")
    assert_ok(await admin.client(boss).delete(f"/api/user/{alice.id}"))
    row = await load_user(admin, alice.id)
    assert row.status == UserStatus.DELETED
    assert row.username.startswith("deleted_")
    assert_refused(await admin.client(alice).get("/api/user/self"))
    assert_refused(await admin.client(boss).delete(f"/api/user/{alice.id}"), message="用户不存在")


@pytest.mark.parametrize(
    ("actor_role", "target_role", "action", "outcome"),
    [
        (UserRole.ADMIN, UserRole.COMMON, "disable", (UserRole.COMMON, UserStatus.DISABLED)),
        (UserRole.ADMIN, UserRole.COMMON, "promote", "普通管理员用户无法提升其他用户为管理员"),
        (UserRole.ADMIN, UserRole.COMMON, "demote", "该用户已经是普通用户"),
        (UserRole.ADMIN, UserRole.ADMIN, "disable", "无权更新同权限等级或更高权限等级的用户信息"),
        (UserRole.ROOT, UserRole.COMMON, "promote", (UserRole.ADMIN, UserStatus.ENABLED)),
        (UserRole.ROOT, UserRole.ADMIN, "promote", "该用户已经是管理员"),
        (UserRole.ROOT, UserRole.ADMIN, "demote", (UserRole.COMMON, UserStatus.ENABLED)),
        (UserRole.ROOT, UserRole.ADMIN, "disable", (UserRole.ADMIN, UserStatus.DISABLED)),
        (UserRole.ROOT, UserRole.ADMIN, "delete", (UserRole.ADMIN, UserStatus.DELETED)),
    ],
)
async def test_manage_follows_one_apis_rules(
    admin: AdminHarness, actor_role: int, target_role: int, action: str, outcome: Any
) -> None:
    actor = admin.root if actor_role == UserRole.ROOT else await admin.add_user("boss", role=10)
    target = await admin.add_user("target", role=target_role)
    body = {"username": "target", "action": action}
    response = await admin.client(actor).post("/api/user/manage", json=body)
    row = await load_user(admin, target.id)
    if isinstance(outcome, str):
        assert_refused(response, message=outcome)
        assert (row.role, row.status) == (target_role, UserStatus.ENABLED)
    else:
        assert assert_ok(response) == {"role": outcome[0], "status": outcome[1]}
        assert (row.role, row.status) == outcome
        assert (await admin.wait_for_change("user")).ids == [target.id]


@pytest.mark.parametrize("action", ["disable", "delete", "demote", "enable", "promote"])
async def test_nobody_manages_root(admin: AdminHarness, action: str) -> None:
    boss = await admin.add_user("boss", role=UserRole.ADMIN)
    for actor in (boss, admin.root):
        response = await admin.client(actor).post(
            "/api/user/manage", json={"username": "root", "action": action}
        )
        assert_refused(response, message="无权更新同权限等级或更高权限等级的用户信息")
    row = await load_user(admin, admin.root.id)
    assert (row.username, row.role, row.status) == ("root", UserRole.ROOT, UserStatus.ENABLED)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "ghost", "action": "disable"}, "用户不存在"),
        ({"username": "alice", "action": "explode"}, "action"),
        ({"username": "", "action": "disable"}, "username"),
    ],
)
async def test_manage_refuses_unknown_users_and_actions(
    admin: AdminHarness, body: dict[str, str], message: str
) -> None:
    await admin.add_user("alice")
    response = await admin.client(admin.root).post("/api/user/manage", json=body)
    assert_refused(response, message=message)


async def test_a_disabled_user_is_refused_at_once_and_enabled_again(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    boss = admin.client(admin.root)
    mine = admin.client(alice)
    assert_ok(await mine.get("/api/user/self"))

    assert_ok(await boss.post("/api/user/manage", json={"username": "alice", "action": "disable"}))
    assert_refused(await mine.get("/api/user/self"), message="封禁")

    assert_ok(await boss.post("/api/user/manage", json={"username": "alice", "action": "enable"}))
    assert_ok(await mine.get("/api/user/self"))


async def test_changes_are_announced_only_once_committed(admin: AdminHarness) -> None:
    """A relay reloading the user on `config.changed` must already see the new status."""
    alice = await admin.add_user("alice")
    seen: list[tuple[list[int], int]] = []

    async def reload_like_a_relay(event: ConfigChanged) -> None:
        if event.entity == "user":
            async with admin.database.session() as session:
                user = await session.get(User, event.ids[0])
                assert user is not None
                seen.append((event.ids, user.status))

    await admin.bus.subscribe(ConfigChanged, reload_like_a_relay)
    body = {"username": "alice", "action": "disable"}
    assert_ok(await admin.client(admin.root).post("/api/user/manage", json=body))
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen == [([alice.id], UserStatus.DISABLED)]
