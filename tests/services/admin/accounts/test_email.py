"""Email codes over a real SMTP server: verification, binding an address, password reset."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from libs.common.db.models import User
from services.admin.accounts.codes import MAX_WRONG_ATTEMPTS
from services.admin.security import SESSION_COOKIE
from tests.harness.smtp import SmtpServer
from tests.services.admin.accounts.conftest import (
    SERVER_ADDRESS,
    mailed_code,
    mailed_link,
    set_options,
    use_smtp,
)
from tests.services.admin.harness import PASSWORD, AdminHarness, assert_ok, assert_refused


async def _email_of(admin: AdminHarness, user_id: int) -> str:
    async with admin.database.session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.email


async def test_a_verification_code_is_mailed_through_the_configured_server(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp, SystemName="Gateway")
    response = await admin.client().get("/api/verification", params={"email": "new@example.com"})
    assert assert_ok(response) is None
    (mail,) = await smtp.wait_for_async(1)
    assert mail.recipients == ["new@example.com"]
    assert mail.sender == "noreply@one.example"
    assert mail.subject == "Gateway邮箱验证邮件"
    code = mailed_code(mail)
    assert code.isdigit()
    assert len(code) == 6
    assert "10 分钟" in mail.html


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "a b@example.com", "@example.com"])
async def test_a_malformed_address_is_refused(
    admin: AdminHarness, smtp: SmtpServer, email: str
) -> None:
    await use_smtp(admin, smtp)
    response = await admin.client().get("/api/verification", params={"email": email})
    assert_refused(response, message="无效的参数")
    assert smtp.received == []


async def test_a_taken_address_gets_no_code(admin: AdminHarness, smtp: SmtpServer) -> None:
    await use_smtp(admin, smtp)
    await admin.add_user("alice", email="alice@example.com")
    response = await admin.client().get("/api/verification", params={"email": "Alice@Example.com"})
    assert_refused(response, message="邮箱地址已被占用")
    assert smtp.received == []


async def test_the_domain_whitelist_is_enforced_when_enabled(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(
        admin,
        smtp,
        EmailDomainRestrictionEnabled=True,
        EmailDomainWhitelist="example.com, corp.example",
    )
    client = admin.client()
    refused = await client.get("/api/verification", params={"email": "x@other.org"})
    assert_refused(refused, message="白名单")
    # A subdomain is another domain.
    refused = await client.get("/api/verification", params={"email": "x@mail.example.com"})
    assert_refused(refused, message="白名单")
    assert_ok(await client.get("/api/verification", params={"email": "x@CORP.example"}))
    assert len(await smtp.wait_for_async(1)) == 1


async def test_without_smtp_no_code_can_be_sent(admin: AdminHarness) -> None:
    response = await admin.client().get("/api/verification", params={"email": "a@example.com"})
    assert_refused(response, message="SMTP")


async def test_a_mail_server_refusing_the_message_is_reported(admin: AdminHarness) -> None:
    with SmtpServer(users={"account": "right"}) as smtp:
        await use_smtp(admin, smtp, SMTPAccount="account", SMTPToken="wrong-smtp-token")
        response = await admin.client().get("/api/verification", params={"email": "a@example.com"})
    message = assert_refused(response, message="邮件发送失败")
    assert "wrong-smtp-token" not in message


async def test_an_address_is_bound_with_its_code_once(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp)
    alice = await admin.add_user("alice")
    client = admin.client(alice)
    assert_ok(await client.get("/api/verification", params={"email": "alice@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])

    params = {"email": "alice@example.com", "code": code}
    assert_ok(await client.get("/api/oauth/email/bind", params=params))
    assert await _email_of(admin, alice.id) == "alice@example.com"

    bob = await admin.add_user("bob")
    bind = await admin.client(bob).get("/api/oauth/email/bind", params=params)
    assert_refused(bind, message="邮箱地址已被占用")
    assert await _email_of(admin, bob.id) == ""


async def test_binding_an_address_needs_a_login(admin: AdminHarness) -> None:
    response = await admin.client().get(
        "/api/oauth/email/bind", params={"email": "a@example.com", "code": "123456"}
    )
    assert_refused(response, status_code=401)


async def test_wrong_guesses_void_the_code(admin: AdminHarness, smtp: SmtpServer) -> None:
    await use_smtp(admin, smtp)
    alice = await admin.add_user("alice")
    client = admin.client(alice)
    assert_ok(await client.get("/api/verification", params={"email": "alice@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    for _ in range(MAX_WRONG_ATTEMPTS):
        params = {"email": "alice@example.com", "code": wrong}
        assert_refused(await client.get("/api/oauth/email/bind", params=params), message="验证码")
    params = {"email": "alice@example.com", "code": code}
    assert_refused(await client.get("/api/oauth/email/bind", params=params), message="验证码")
    assert await _email_of(admin, alice.id) == ""


async def test_password_reset_end_to_end(admin: AdminHarness, smtp: SmtpServer) -> None:
    await use_smtp(admin, smtp, SystemName="Gateway")
    alice = await admin.add_user("alice", email="alice+ai@example.com")
    browser = admin.client()
    login = {"username": "alice", "password": PASSWORD}
    assert_ok(await browser.post("/api/user/login", json=login))
    old_session = browser.cookies[SESSION_COOKIE]

    response = await admin.client().get(
        "/api/reset_password", params={"email": "alice+ai@example.com"}
    )
    assert_ok(response)
    (mail,) = await smtp.wait_for_async(1)
    assert mail.recipients == ["alice+ai@example.com"]
    assert mail.subject == "Gateway密码重置"
    link = urlsplit(mailed_link(mail))
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{SERVER_ADDRESS}/user/reset"
    query = parse_qs(link.query)
    assert query["email"] == ["alice+ai@example.com"]  # the '+' survives the link
    token = query["token"][0]

    body = {"email": query["email"][0], "token": token}
    new_password = assert_ok(await admin.client().post("/api/user/reset", json=body))
    assert isinstance(new_password, str)
    assert 8 <= len(new_password) <= 20
    again = await admin.client().post("/api/user/reset", json=body)
    assert_refused(again, message="重置链接非法或已过期")

    assert_refused(await admin.client().post("/api/user/login", json=login), message="密码错误")
    data = assert_ok(
        await admin.client().post(
            "/api/user/login", json={"username": "alice", "password": new_password}
        )
    )
    assert data["id"] == alice.id
    # The session opened with the old password has ended.
    stale = admin.client(cookies={SESSION_COOKIE: old_session})
    bind = await stale.get("/api/oauth/email/bind", params={"email": "a@b.io", "code": "1"})
    assert_refused(bind, status_code=401)


async def test_a_reset_request_does_not_tell_whether_the_address_has_an_account(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp)
    await admin.add_user("alice", email="alice@example.com")
    client = admin.client()
    unknown = await client.get("/api/reset_password", params={"email": "nobody@example.com"})
    known = await client.get("/api/reset_password", params={"email": "alice@example.com"})
    assert unknown.json() == known.json() == {"success": True, "message": "", "data": None}
    await smtp.wait_for_async(1)
    await asyncio.sleep(0.2)
    assert [mail.recipients for mail in smtp.received] == [["alice@example.com"]]


async def test_a_wrong_or_foreign_reset_token_is_refused(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp)
    await admin.add_user("alice", email="alice@example.com")
    await admin.add_user("bob", email="bob@example.com")
    assert_ok(await admin.client().get("/api/reset_password", params={"email": "bob@example.com"}))
    token = parse_qs(urlsplit(mailed_link((await smtp.wait_for_async(1))[0])).query)["token"][0]

    client = admin.client()
    foreign = {"email": "alice@example.com", "token": token}
    assert_refused(await client.post("/api/user/reset", json=foreign), message="重置链接非法")
    wrong = {"email": "bob@example.com", "token": "0" * 32}
    assert_refused(await client.post("/api/user/reset", json=wrong), message="重置链接非法")
    assert_refused(await client.post("/api/user/reset", json={"email": "bob@example.com"}))


async def test_no_reset_link_without_a_server_address(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp)
    await set_options(admin, ServerAddress="")
    await admin.add_user("alice", email="alice@example.com")
    response = await admin.client(headers={"Host": "evil.example"}).get(
        "/api/reset_password", params={"email": "alice@example.com"}
    )
    assert_refused(response, message="ServerAddress")
    assert smtp.received == []
