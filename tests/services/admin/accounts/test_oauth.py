"""OAuth and OIDC login, registration and binding against the fake provider."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import func, select, update

from libs.common.db.models import Token, User, UserStatus
from services.admin.accounts.outbound import OutboundConfig, get_outbound_config
from services.admin.security import SESSION_COOKIE
from tests.fakes.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    WECHAT_SERVER_TOKEN,
    FakeOAuthProvider,
    GitHubAccount,
    LarkAccount,
    OidcAccount,
)
from tests.harness.process import free_port
from tests.services.admin.accounts.conftest import SERVER_ADDRESS, set_options, use_provider
from tests.services.admin.harness import PASSWORD, AdminHarness, assert_ok, assert_refused

OCTOCAT = GitHubAccount(id=583231, login="octocat", name="The Octocat", email="octo@gh.example")


async def _user(admin: AdminHarness, **where: str) -> User | None:
    async with admin.database.session() as session:
        query = select(User)
        for column, value in where.items():
            query = query.where(getattr(User, column) == value)
        return await session.scalar(query)


async def _user_count(admin: AdminHarness) -> int:
    async with admin.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def _callback(client: httpx.AsyncClient, provider: str, code: str) -> httpx.Response:
    state = assert_ok(await client.get("/api/oauth/state"))
    return await client.get(f"/api/oauth/{provider}", params={"code": code, "state": state})


@pytest.fixture
async def github(admin: AdminHarness, provider: FakeOAuthProvider) -> FakeOAuthProvider:
    await set_options(
        admin, GitHubOAuthEnabled=True, GitHubClientId=CLIENT_ID, GitHubClientSecret=CLIENT_SECRET
    )
    return provider


async def _logged_in(admin: AdminHarness, username: str) -> httpx.AsyncClient:
    client = admin.client()
    body = {"username": username, "password": PASSWORD}
    assert_ok(await client.post("/api/user/login", json=body))
    return client


# --- the state --------------------------------------------------------------------------------


async def test_the_state_is_random_and_remembered_by_the_browser(admin: AdminHarness) -> None:
    client = admin.client()
    response = await client.get("/api/oauth/state")
    first = assert_ok(response)
    second = assert_ok(await client.get("/api/oauth/state"))
    assert isinstance(first, str)
    assert len(first) >= 24
    assert first != second
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    morsel = cookie["oauth_state"]
    assert morsel.value == first
    assert morsel["path"] == "/api/oauth"
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert int(morsel["max-age"]) == 600


async def test_a_missing_foreign_or_used_state_is_refused_before_asking_github(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    browser = admin.client()
    no_state = await browser.get("/api/oauth/github", params={"code": github.github_code(OCTOCAT)})
    assert_refused(no_state, status_code=403, message="state is empty or not same")

    # A state handed out to another browser (the attacker's) does not work in this one.
    attacker_state = assert_ok(await admin.client().get("/api/oauth/state"))
    params = {"code": github.github_code(OCTOCAT), "state": attacker_state}
    assert_refused(await browser.get("/api/oauth/github", params=params), status_code=403)

    state = assert_ok(await browser.get("/api/oauth/state"))
    params = {"code": github.github_code(OCTOCAT), "state": state}
    assert_ok(await browser.get("/api/oauth/github", params=params))
    # Replaying the whole request, cookie included: a state is good for one callback.
    replay = admin.client(headers={"Cookie": f"oauth_state={state}"})
    params = {"code": github.github_code(OCTOCAT), "state": state}
    assert_refused(await replay.get("/api/oauth/github", params=params), status_code=403)
    assert len(github.calls_to("/github/login/oauth/access_token")) == 1


# --- GitHub -----------------------------------------------------------------------------------


async def test_github_login_registers_a_new_user_and_signs_them_in(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    await set_options(admin, QuotaForNewUser=42)
    client = admin.client()
    response = await _callback(client, "github", github.github_code(OCTOCAT))
    data = assert_ok(response)
    user = await _user(admin, github_id="583231")
    assert user is not None
    assert data == {
        "id": user.id,
        "username": f"github_{user.id}",
        "display_name": "The Octocat",
        "role": 1,
        "status": 1,
        "group": "default",
    }
    assert user.email == "octo@gh.example"
    assert user.quota == 42
    assert admin.state.sessions.decode(client.cookies[SESSION_COOKIE]) is not None
    async with admin.database.session() as session:
        tokens = await session.scalar(select(func.count()).where(Token.user_id == user.id))
    assert tokens == 1

    (exchange,) = github.calls_to("/github/login/oauth/access_token")
    assert exchange.form["client_id"] == CLIENT_ID
    assert exchange.form["client_secret"] == CLIENT_SECRET

    users = await _user_count(admin)
    again = assert_ok(await _callback(admin.client(), "github", github.github_code(OCTOCAT)))
    assert again["id"] == user.id
    assert await _user_count(admin) == users


async def test_a_github_email_another_account_holds_is_not_copied(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    await admin.add_user("alice", email="octo@gh.example")
    assert_ok(await _callback(admin.client(), "github", github.github_code(OCTOCAT)))
    user = await _user(admin, github_id="583231")
    assert user is not None
    assert user.email == ""


async def test_a_signed_in_user_binds_their_github_account(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    alice = await admin.add_user("alice")
    browser = await _logged_in(admin, "alice")
    response = await _callback(browser, "github", github.github_code(OCTOCAT))
    assert response.json() == {"success": True, "message": "bind", "data": None}
    bound = await _user(admin, github_id="583231")
    assert bound is not None
    assert bound.id == alice.id

    await admin.add_user("bob")
    bob_browser = await _logged_in(admin, "bob")
    again = await _callback(bob_browser, "github", github.github_code(OCTOCAT))
    assert_refused(again, message="该 GitHub 账户已被绑定")


async def test_an_account_one_api_linked_by_login_is_found_and_moved_to_the_id(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    legacy = await admin.add_user("legacy", github_id="octocat")
    data = assert_ok(await _callback(admin.client(), "github", github.github_code(OCTOCAT)))
    assert data["id"] == legacy.id
    moved = await _user(admin, username="legacy")
    assert moved is not None
    assert moved.github_id == "583231"


async def test_a_login_made_of_digits_never_matches_someone_elses_id(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    victim = await admin.add_user("victim", github_id="583231")
    attacker = GitHubAccount(id=777, login="583231")
    data = assert_ok(await _callback(admin.client(), "github", github.github_code(attacker)))
    assert data["id"] != victim.id
    created = await _user(admin, github_id="777")
    assert created is not None
    assert created.id == data["id"]


async def test_github_login_follows_the_switches(
    admin: AdminHarness, github: FakeOAuthProvider
) -> None:
    await set_options(admin, RegisterEnabled=False)
    refused = await _callback(admin.client(), "github", github.github_code(OCTOCAT))
    assert_refused(refused, message="管理员关闭了新用户注册")
    # Registration closed does not lock out a linked account.
    linked = await admin.add_user("linked", github_id="583231")
    assert (
        assert_ok(await _callback(admin.client(), "github", github.github_code(OCTOCAT)))["id"]
        == linked.id
    )

    async with admin.database.session() as session:
        await session.execute(
            update(User).where(User.id == linked.id).values(status=UserStatus.DISABLED)
        )
    disabled = await _callback(admin.client(), "github", github.github_code(OCTOCAT))
    assert_refused(disabled, message="用户已被封禁")

    await set_options(admin, GitHubOAuthEnabled=False)
    off = await _callback(admin.client(), "github", github.github_code(OCTOCAT))
    assert_refused(off, message="管理员未开启通过 GitHub 登录以及注册")


async def test_a_bad_code_is_refused(admin: AdminHarness, github: FakeOAuthProvider) -> None:
    response = await _callback(admin.client(), "github", "not-a-code")
    assert_refused(response, message="授权失败")
    assert_refused(await _callback(admin.client(), "github", ""), message="无效的参数")


async def test_provider_failures_are_envelope_errors_without_the_client_secret(
    admin: AdminHarness, github: FakeOAuthProvider, caplog: pytest.LogCaptureFixture
) -> None:
    github.fail("github", status=502)
    broken = await _callback(admin.client(), "github", github.github_code(OCTOCAT))
    assert CLIENT_SECRET not in assert_refused(broken, message="GitHub返回值非法")

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = OutboundConfig(github_token_url=f"{closed}/token", github_user_url=f"{closed}/user")
    admin.app.dependency_overrides[get_outbound_config] = lambda: config
    unreachable = await _callback(admin.client(), "github", "any-code")
    assert CLIENT_SECRET not in assert_refused(unreachable, message="无法连接至 GitHub 服务器")
    assert "GitHub" in caplog.text
    assert CLIENT_SECRET not in caplog.text


async def test_a_slow_provider_times_out(admin: AdminHarness, github: FakeOAuthProvider) -> None:
    use_provider(admin, github, timeout=0.2)
    github.delay = 2.0
    response = await _callback(admin.client(), "github", github.github_code(OCTOCAT))
    assert_refused(response, message="无法连接至 GitHub 服务器")


# --- OIDC -------------------------------------------------------------------------------------


@pytest.fixture
async def oidc(admin: AdminHarness, provider: FakeOAuthProvider) -> FakeOAuthProvider:
    await set_options(
        admin,
        OidcEnabled=True,
        OidcClientId=CLIENT_ID,
        OidcClientSecret=CLIENT_SECRET,
        OidcWellKnown=provider.oidc_well_known,
        ServerAddress=SERVER_ADDRESS,
    )
    return provider


async def test_oidc_login_maps_sub_email_and_preferred_username(
    admin: AdminHarness, oidc: FakeOAuthProvider
) -> None:
    account = OidcAccount(
        sub="c1d2-e3", email="carol@idp.example", name="Carol C", preferred_username="carol"
    )
    client = admin.client()
    data = assert_ok(await _callback(client, "oidc", oidc.oidc_code(account)))
    assert (data["username"], data["display_name"]) == ("carol", "Carol C")
    user = await _user(admin, oidc_id="c1d2-e3")
    assert user is not None
    assert user.id == data["id"]
    assert user.email == "carol@idp.example"
    assert client.cookies.get(SESSION_COOKIE)

    (exchange,) = oidc.calls_to("/oidc/token")
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == f"{SERVER_ADDRESS}/oauth/oidc"
    assert exchange.form["client_secret"] == CLIENT_SECRET
    (userinfo,) = oidc.calls_to("/oidc/userinfo")
    assert userinfo.headers["Authorization"].startswith("Bearer at-")


async def test_oidc_usernames_never_collide_and_unverified_emails_are_dropped(
    admin: AdminHarness, oidc: FakeOAuthProvider
) -> None:
    await admin.add_user("carol")
    account = OidcAccount(
        sub="other", email="x@idp.example", email_verified=False, preferred_username="carol"
    )
    data = assert_ok(await _callback(admin.client(), "oidc", oidc.oidc_code(account)))
    assert data["username"] == f"oidc_{data['id']}"
    assert data["display_name"] == "OIDC User"
    user = await _user(admin, oidc_id="other")
    assert user is not None
    assert user.email == ""


async def test_oidc_uses_configured_endpoints_and_refuses_without_any(
    admin: AdminHarness, oidc: FakeOAuthProvider
) -> None:
    await set_options(
        admin,
        OidcWellKnown="",
        OidcTokenEndpoint=oidc.oidc_token_endpoint,
        OidcUserinfoEndpoint=oidc.oidc_userinfo_endpoint,
    )
    assert_ok(await _callback(admin.client(), "oidc", oidc.oidc_code(OidcAccount(sub="s1"))))
    assert oidc.calls_to("/oidc/.well-known/openid-configuration") == []

    await set_options(admin, OidcTokenEndpoint="", OidcUserinfoEndpoint="")
    refused = await _callback(admin.client(), "oidc", oidc.oidc_code(OidcAccount(sub="s2")))
    assert_refused(refused, message="未配置")


async def test_a_signed_in_user_binds_an_oidc_identity(
    admin: AdminHarness, oidc: FakeOAuthProvider
) -> None:
    alice = await admin.add_user("alice")
    browser = await _logged_in(admin, "alice")
    response = await _callback(browser, "oidc", oidc.oidc_code(OidcAccount(sub="alice-sub")))
    assert response.json()["message"] == "bind"
    bound = await _user(admin, oidc_id="alice-sub")
    assert bound is not None
    assert bound.id == alice.id


async def test_oidc_is_refused_when_disabled(admin: AdminHarness, oidc: FakeOAuthProvider) -> None:
    await set_options(admin, OidcEnabled=False)
    response = await _callback(admin.client(), "oidc", oidc.oidc_code(OidcAccount(sub="s")))
    assert_refused(response, message="管理员未开启通过 OIDC 登录以及注册")


# --- Lark and WeChat --------------------------------------------------------------------------


async def test_lark_login_registers_and_is_off_without_a_client_id(
    admin: AdminHarness, provider: FakeOAuthProvider
) -> None:
    code = provider.lark_code(LarkAccount(open_id="ou_123", name="飞书用户"))
    assert_refused(await _callback(admin.client(), "lark", code), message="飞书")

    await set_options(
        admin,
        LarkClientId=CLIENT_ID,
        LarkClientSecret=CLIENT_SECRET,
        ServerAddress=SERVER_ADDRESS,
    )
    code = provider.lark_code(LarkAccount(open_id="ou_123", name="飞书用户"))
    data = assert_ok(await _callback(admin.client(), "lark", code))
    assert (data["username"], data["display_name"]) == (f"lark_{data['id']}", "飞书用户")
    user = await _user(admin, lark_id="ou_123")
    assert user is not None
    assert user.id == data["id"]
    (exchange,) = provider.calls_to("/lark/token")
    assert exchange.form["redirect_uri"] == f"{SERVER_ADDRESS}/oauth/lark"


@pytest.fixture
async def wechat(admin: AdminHarness, provider: FakeOAuthProvider) -> FakeOAuthProvider:
    await set_options(
        admin,
        WeChatAuthEnabled=True,
        WeChatServerAddress=provider.wechat_server,
        WeChatServerToken=WECHAT_SERVER_TOKEN,
    )
    return provider


async def test_wechat_login_registers_with_the_login_servers_answer(
    admin: AdminHarness, wechat: FakeOAuthProvider
) -> None:
    client = admin.client()
    code = wechat.wechat_code("wx-openid-1")
    data = assert_ok(await client.get("/api/oauth/wechat", params={"code": code}))
    assert (data["username"], data["display_name"]) == (f"wechat_{data['id']}", "WeChat User")
    assert client.cookies.get(SESSION_COOKIE)
    (lookup,) = wechat.calls_to("/wechat/api/wechat/user")
    assert lookup.headers["Authorization"] == WECHAT_SERVER_TOKEN

    again = await client.get("/api/oauth/wechat", params={"code": code})
    assert_refused(again, message="验证码错误或已过期")


async def test_wechat_bind_needs_a_login_and_a_free_wechat_account(
    admin: AdminHarness, wechat: FakeOAuthProvider
) -> None:
    unauthenticated = await admin.client().get(
        "/api/oauth/wechat/bind", params={"code": wechat.wechat_code("wx-2")}
    )
    assert_refused(unauthenticated, status_code=401)

    alice = await admin.add_user("alice")
    params = {"code": wechat.wechat_code("wx-2")}
    assert_ok(await admin.client(alice).get("/api/oauth/wechat/bind", params=params))
    bound = await _user(admin, wechat_id="wx-2")
    assert bound is not None
    assert bound.id == alice.id

    bob = await admin.add_user("bob")
    params = {"code": wechat.wechat_code("wx-2")}
    taken = await admin.client(bob).get("/api/oauth/wechat/bind", params=params)
    assert_refused(taken, message="该微信账号已被绑定")


async def test_wechat_is_refused_when_disabled(admin: AdminHarness) -> None:
    response = await admin.client().get("/api/oauth/wechat", params={"code": "x"})
    assert_refused(response, message="管理员未开启通过微信登录以及注册")
