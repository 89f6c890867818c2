"""A caller's own account: `/api/user/{self, token, aff, available_models}`."""

from __future__ import annotations

import dataclasses
import time

import pytest

from libs.common.db.models import Ability, User, UserStatus
from services.admin.security import SessionClaims, password_tag, verify_password
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused
from tests.services.admin.users.rows import add_token, load_user, set_user

SECRET_FIELDS = ("password", "access_token")


def _session_cookie(admin: AdminHarness, user: User) -> dict[str, str]:
    claims = SessionClaims(user.id, password_tag(user.password), int(time.time()))
    return {"session": admin.state.sessions.encode(claims)}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/user/self"),
        ("PUT", "/api/user/self"),
        ("DELETE", "/api/user/self"),
        ("GET", "/api/user/token"),
        ("GET", "/api/user/aff"),
        ("GET", "/api/user/available_models"),
    ],
)
async def test_a_guest_is_refused_with_401(admin: AdminHarness, method: str, path: str) -> None:
    response = await admin.client().request(method, path, json={"display_name": "x"})
    assert_refused(response, status_code=401, message="未登录")


async def test_self_shows_the_callers_profile_without_secrets(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice", quota=1234, group="vip", email="a@example.com")
    profile = assert_ok(await admin.client(alice).get("/api/user/self"))
    assert profile["id"] == alice.id
    assert profile["username"] == "alice"
    assert profile["role"] == 1
    assert profile["status"] == UserStatus.ENABLED
    assert profile["quota"] == 1234
    assert profile["group"] == "vip"
    assert profile["email"] == "a@example.com"
    for field in SECRET_FIELDS:
        assert field not in profile


async def test_update_self_changes_what_is_given_and_keeps_the_rest(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    client = admin.client(alice)
    profile = assert_ok(await client.put("/api/user/self", json={"display_name": "Alice A"}))
    assert (profile["username"], profile["display_name"]) == ("alice", "Alice A")
    # One API's edit page sends every field back, empty ones included.
    profile = assert_ok(
        await client.put(
            "/api/user/self", json={"username": "alice2", "display_name": "", "password": ""}
        )
    )
    assert (profile["username"], profile["display_name"]) == ("alice2", "Alice A")
    row = await load_user(admin, alice.id)
    assert verify_password(alice.password, row.password)


async def test_update_self_cannot_touch_quota_role_group_or_another_user(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice", quota=100)
    bob = await admin.add_user("bob")
    body = {"id": bob.id, "display_name": "mine", "quota": 10**9, "role": 100, "group": "vip"}
    assert_ok(await admin.client(alice).put("/api/user/self", json=body))
    row = await load_user(admin, alice.id)
    assert (row.display_name, row.quota, row.role, row.group) == ("mine", 100, 1, "default")
    assert (await load_user(admin, bob.id)).display_name == "bob"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a" * 13}, "username"),
        ({"display_name": "d" * 21}, "display_name"),
        ({"password": "short7!"}, "password"),
        ({"password": "p" * 21}, "password"),
        ({"username": "nul\x00"}, "username"),
        ({"display_name": 5}, "display_name"),
    ],
)
async def test_update_self_refuses_invalid_fields_in_the_envelope(
    admin: AdminHarness, body: dict[str, object], field: str
) -> None:
    alice = await admin.add_user("alice")
    message = assert_refused(await admin.client(alice).put("/api/user/self", json=body))
    assert field in message
    assert (await load_user(admin, alice.id)).username == "alice"


async def test_update_self_refuses_a_taken_username(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    await admin.add_user("bob")
    response = await admin.client(alice).put("/api/user/self", json={"username": "bob"})
    assert_refused(response, message="用户名已存在")


async def test_a_password_change_keeps_this_session_and_ends_the_others(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    row = await load_user(admin, alice.id)
    this_browser = admin.client(cookies=_session_cookie(admin, row))
    other_browser = admin.client(cookies=_session_cookie(admin, row))

    response = await this_browser.put("/api/user/self", json={"password": "a new secret 1"})
    assert_ok(response)

    row = await load_user(admin, alice.id)
    assert verify_password("a new secret 1", row.password)
    assert row.password.startswith("$2a$10$")
    assert_refused(await other_browser.get("/api/user/self"), status_code=401)
    renewed = admin.client(cookies={"session": response.cookies["session"]})
    assert assert_ok(await renewed.get("/api/user/self"))["id"] == alice.id
    # An access-token client is not a session: it keeps working.
    assert_ok(await admin.client(alice).get("/api/user/self"))


async def test_deleting_oneself_frees_the_name_and_stops_the_tokens(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    token_id = await add_token(admin, alice.id, "k" * 48)

    assert_ok(await admin.client(alice).delete("/api/user/self"))

    row = await load_user(admin, alice.id)
    assert row.status == UserStatus.DELETED
    assert row.username.startswith("deleted_")
    assert row.access_token is None
    assert_refused(await admin.client(alice).get("/api/user/self"), message="access token 无效")
    user_change = await admin.wait_for_change("user")
    assert user_change.ids == [alice.id]
    token_change = await admin.wait_for_change("token")
    assert (token_change.ids, token_change.keys) == ([token_id], ["k" * 48])
    # The name can be taken again.
    new_alice = {"username": "alice", "password": "another pass"}
    assert_ok(await admin.client(admin.root).post("/api/user/", json=new_alice))


async def test_root_cannot_delete_itself(admin: AdminHarness) -> None:
    response = await admin.client(admin.root).delete("/api/user/self")
    assert_refused(response, message="不能删除超级管理员账户")
    assert (await load_user(admin, admin.root.id)).status == UserStatus.ENABLED


async def test_a_new_access_token_replaces_the_old_one(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    token = assert_ok(await admin.client(alice).get("/api/user/token"))
    assert isinstance(token, str)
    assert len(token) == 32
    assert token.isalnum()
    assert_refused(await admin.client(alice).get("/api/user/self"), message="access token 无效")
    renewed = dataclasses.replace(alice, access_token=token)
    assert assert_ok(await admin.client(renewed).get("/api/user/self"))["id"] == alice.id


async def test_the_invitation_code_is_made_once_and_kept(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    await set_user(admin, alice.id, aff_code=None)
    client = admin.client(alice)
    code = assert_ok(await client.get("/api/user/aff"))
    assert isinstance(code, str)
    assert len(code) >= 4
    assert code.isalnum()
    assert assert_ok(await client.get("/api/user/aff")) == code
    assert (await load_user(admin, alice.id)).aff_code == code


async def test_available_models_are_the_enabled_ones_of_the_callers_group(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    async with admin.database.session() as session:
        session.add_all(
            [
                Ability(group="default", model="gpt-4o", channel_id=1, enabled=True),
                Ability(group="default", model="gpt-4o", channel_id=2, enabled=True),
                Ability(group="default", model="claude-3", channel_id=2, enabled=True),
                Ability(group="default", model="switched-off", channel_id=3, enabled=False),
                Ability(group="vip", model="vip-only", channel_id=4, enabled=True),
            ]
        )
    client = admin.client(alice)
    assert assert_ok(await client.get("/api/user/available_models")) == ["claude-3", "gpt-4o"]
    await set_user(admin, alice.id, group="vip")
    assert assert_ok(await client.get("/api/user/available_models")) == ["vip-only"]
