"""`POST /api/user/login` and `GET /api/user/logout`: the session cookie and its attributes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import Morsel, SimpleCookie

import httpx
import pytest
from sqlalchemy import update

from libs.common.db.models import User, UserStatus
from services.admin.security import SESSION_COOKIE, SESSION_MAX_AGE_SECONDS
from tests.harness.smtp import SmtpServer
from tests.services.admin.accounts.conftest import mailed_code, set_options, use_smtp
from tests.services.admin.harness import PASSWORD, AdminHarness, assert_ok, assert_refused


def _set_cookie(response: httpx.Response, name: str) -> Morsel[str]:
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie[name]
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


@pytest.fixture
async def https_client(admin: AdminHarness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=admin.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def test_login_sets_a_strict_http_only_session_cookie_that_authenticates(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    alice = await admin.add_user("alice")
    client = admin.client()
    response = await client.post(
        "/api/user/login", json={"username": "alice", "password": PASSWORD}
    )
    data = assert_ok(response)
    assert data == {
        "id": alice.id,
        "username": "alice",
        "display_name": "alice",
        "role": 1,
        "status": 1,
        "group": "default",
    }
    cookie = _set_cookie(response, SESSION_COOKIE)
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == SESSION_MAX_AGE_SECONDS == 30 * 24 * 3600
    assert not cookie["secure"]  # plain http: a Secure cookie would never come back
    claims = admin.state.sessions.decode(cookie.value)
    assert claims is not None
    assert claims.user_id == alice.id

    # The cookie alone now authenticates a route that needs a signed-in user.
    await use_smtp(admin, smtp)
    assert_ok(await client.get("/api/verification", params={"email": "alice@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])
    bind = await client.get("/api/oauth/email/bind", params={"email": "a@x.io", "code": code})
    assert_refused(bind, message="验证码错误")  # authenticated: the code is what is checked
    params = {"email": "alice@example.com", "code": code}
    assert_ok(await client.get("/api/oauth/email/bind", params=params))


async def test_the_cookie_is_secure_when_the_request_came_over_https(
    admin: AdminHarness, https_client: httpx.AsyncClient
) -> None:
    await admin.add_user("alice")
    response = await https_client.post(
        "/api/user/login", json={"username": "alice", "password": PASSWORD}
    )
    assert _set_cookie(assert_ok_response(response), SESSION_COOKIE)["secure"] is True


async def test_a_trusted_proxy_saying_https_makes_the_cookie_secure(admin: AdminHarness) -> None:
    await admin.add_user("alice")
    body = {"username": "alice", "password": PASSWORD}
    forwarded = {"X-Forwarded-Proto": "https"}
    untrusted = await admin.client().post("/api/user/login", json=body, headers=forwarded)
    assert not _set_cookie(assert_ok_response(untrusted), SESSION_COOKIE)["secure"]

    admin.state.settings.trusted_proxies = ["127.0.0.0/8"]
    trusted = await admin.client().post("/api/user/login", json=body, headers=forwarded)
    assert _set_cookie(assert_ok_response(trusted), SESSION_COOKIE)["secure"] is True


def assert_ok_response(response: httpx.Response) -> httpx.Response:
    assert_ok(response)
    return response


async def test_login_accepts_the_account_email_but_a_username_wins(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice", email="alice@example.com")
    client = admin.client()
    body = {"username": "alice@example.com", "password": PASSWORD}
    assert assert_ok(await client.post("/api/user/login", json=body))["id"] == alice.id

    # A username that is someone else's address names its owner, not them.
    await admin.add_user("carol", email="bob@example.com")
    bob = await admin.add_user("bob@example.com")
    body = {"username": "bob@example.com", "password": PASSWORD}
    assert assert_ok(await client.post("/api/user/login", json=body))["id"] == bob.id


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD)],
)
async def test_a_wrong_name_or_password_is_refused_alike(
    admin: AdminHarness, username: str, password: str
) -> None:
    await admin.add_user("alice")
    response = await admin.client().post(
        "/api/user/login", json={"username": username, "password": password}
    )
    assert_refused(response, message="用户名或密码错误")
    assert "set-cookie" not in response.headers


async def test_a_disabled_user_cannot_log_in(admin: AdminHarness) -> None:
    alice = await admin.add_user("alice")
    async with admin.database.session() as session:
        await session.execute(
            update(User).where(User.id == alice.id).values(status=UserStatus.DISABLED)
        )
    response = await admin.client().post(
        "/api/user/login", json={"username": "alice", "password": PASSWORD}
    )
    assert_refused(response, message="用户名或密码错误，或用户已被封禁")


async def test_password_login_can_be_switched_off(admin: AdminHarness) -> None:
    await admin.add_user("alice")
    await set_options(admin, PasswordLoginEnabled=False)
    response = await admin.client().post(
        "/api/user/login", json={"username": "alice", "password": PASSWORD}
    )
    assert_refused(response, message="管理员关闭了密码登录")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "", "password": "x"},
        {"username": "alice"},
        {},
        {"username": "a\x00", "password": "x"},
    ],
)
async def test_empty_credentials_are_invalid_parameters(
    admin: AdminHarness, body: dict[str, str]
) -> None:
    assert_refused(await admin.client().post("/api/user/login", json=body), message="无效的参数")


async def test_another_site_cannot_log_the_browser_in(admin: AdminHarness) -> None:
    await admin.add_user("alice")
    client = admin.client(headers={"Origin": "https://evil.example"})
    response = await client.post(
        "/api/user/login", json={"username": "alice", "password": PASSWORD}
    )
    assert_refused(response, message="跨站")


async def test_login_is_under_the_critical_rate_limit(admin: AdminHarness) -> None:
    await set_options(admin, PasswordLoginEnabled=False)  # refusals are fast; each still counts
    client = admin.client()
    body = {"username": "alice", "password": "x"}
    for _ in range(20):
        assert_refused(await client.post("/api/user/login", json=body), message="密码登录")
    assert_refused(await client.post("/api/user/login", json=body), status_code=429)


async def test_logout_clears_the_cookie(admin: AdminHarness) -> None:
    await admin.add_user("alice")
    client = admin.client()
    body = {"username": "alice", "password": PASSWORD}
    assert_ok(await client.post("/api/user/login", json=body))
    assert client.cookies.get(SESSION_COOKIE)

    response = await client.get("/api/user/logout")
    assert_ok(response)
    cleared = _set_cookie(response, SESSION_COOKIE)
    assert cleared.value == ""
    assert int(cleared["max-age"]) == 0
    assert cleared["path"] == "/"
    assert client.cookies.get(SESSION_COOKIE) is None
