"""What every `/api` route shares: the envelope, authentication, roles, CSRF, rate limits."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from libs.common.db.models import User, UserRole, UserStatus
from services.admin.security import SessionClaims, SessionCodec, password_tag
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused


async def test_status_is_public_and_says_root_still_has_the_default_password(
    admin: AdminHarness,
) -> None:
    status = assert_ok(await admin.client().get("/api/status"))
    assert status["system_name"] == "One API"
    assert status["quota_per_unit"] == 500000
    assert status["root_password_is_default"] is True

    async with admin.database.session() as session:
        await session.execute(
            update(User).where(User.id == admin.root.id).values(password="$2a$10$" + "x" * 53)
        )
    status = assert_ok(await admin.client().get("/api/status"))
    assert status["root_password_is_default"] is False


async def test_a_route_that_needs_a_login_answers_401_in_the_envelope(admin: AdminHarness) -> None:
    response = await admin.client().get("/api/user/self")
    assert_refused(response, status_code=401, message="未登录")


async def test_an_unknown_access_token_is_refused(admin: AdminHarness) -> None:
    client = admin.client(headers={"Authorization": "Bearer nope"})
    assert_refused(await client.get("/api/user/self"), message="access token 无效")


async def test_a_disabled_user_is_refused_at_once(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    async with admin.database.session() as session:
        await session.execute(
            update(User).where(User.id == alice.id).values(status=UserStatus.DISABLED)
        )
    assert_refused(await admin.client(alice).get("/api/user/self"), message="封禁")


async def test_a_common_user_cannot_reach_admin_routes(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    assert_refused(await admin.client(alice).get("/api/user/"), message="权限不足")


def test_a_session_cookie_cannot_be_forged_or_kept_forever() -> None:
    codec = SessionCodec("secret")
    claims = SessionClaims(7, password_tag("hash"), int(time.time()))
    cookie = codec.encode(claims)
    assert codec.decode(cookie) == claims
    assert SessionCodec("other").decode(cookie) is None
    payload, _, signature = cookie.partition(".")
    assert (
        codec.decode(payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature) is None
    )
    assert codec.decode(cookie, now=time.time() + 31 * 24 * 3600) is None
    assert codec.decode("garbage") is None


async def test_a_cross_site_request_with_the_session_cookie_is_refused(
    admin: AdminHarness,
) -> None:
    root = admin.state.sessions.encode(
        SessionClaims(admin.root.id, await _root_tag(admin), int(time.time()))
    )
    same_site = admin.client(cookies={"session": root})
    assert_ok(await same_site.get("/api/user/self"))
    forged = admin.client(cookies={"session": root}, headers={"Origin": "https://evil.example"})
    assert_refused(await forged.put("/api/user/self", json={"display_name": "x"}), message="跨站")
    # Reading is not a forgery risk: the browser would not let the other site see the answer.
    assert_ok(await forged.get("/api/user/self"))


async def _root_tag(admin: AdminHarness) -> str:
    async with admin.database.session() as session:
        root = await session.get(User, admin.root.id)
        assert root is not None
        return password_tag(root.password)


@pytest.mark.parametrize("role", [UserRole.ADMIN])
async def test_the_api_rate_limit_answers_429(admin: AdminHarness, role: int) -> None:
    admin.state.settings.global_api_rate_limit = 3
    client = admin.client()
    for _ in range(3):
        assert_ok(await client.get("/api/status"))
    assert_refused(await client.get("/api/status"), status_code=429)


async def test_bad_input_gets_the_envelope_naming_the_field(admin: AdminHarness) -> None:
    response = await admin.client(admin.root).get("/api/log/?p=abc")
    message = assert_refused(response)
    assert "p" in message
