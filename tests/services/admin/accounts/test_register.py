"""`POST /api/user/register`: One API's switches and validation, rewards, the default token."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from libs.common.db.models import (
    TOKEN_KEY_LENGTH,
    Log,
    LogType,
    Token,
    TokenStatus,
    User,
    UserRole,
    UserStatus,
)
from services.admin.security import verify_password
from tests.harness.smtp import SmtpServer
from tests.services.admin.accounts.conftest import mailed_code, set_options, use_smtp
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused


async def _user(admin: AdminHarness, username: str) -> User:
    async with admin.database.session() as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None, f"no user {username}"
        return user


async def _logs(admin: AdminHarness, user_id: int) -> list[Log]:
    async with admin.database.log_session() as session:
        return list(await session.scalars(select(Log).where(Log.user_id == user_id)))


def _form(username: str = "alice", password: str = "s3cret-pass", **more: Any) -> dict[str, Any]:
    return {"username": username, "password": password, **more}


async def test_a_new_user_gets_a_hashed_password_an_aff_code_and_an_unlimited_default_token(
    admin: AdminHarness,
) -> None:
    assert_ok(await admin.client().post("/api/user/register", json=_form()))

    alice = await _user(admin, "alice")
    assert verify_password("s3cret-pass", alice.password)
    assert alice.password.startswith("$2a$10$")
    assert (alice.role, alice.status, alice.group) == (
        UserRole.COMMON,
        UserStatus.ENABLED,
        "default",
    )
    assert alice.display_name == "alice"
    assert alice.email == ""
    assert alice.quota == 0
    assert alice.aff_code
    assert alice.inviter_id == 0
    assert alice.access_token is None
    async with admin.database.session() as session:
        tokens = list(await session.scalars(select(Token).where(Token.user_id == alice.id)))
    assert len(tokens) == 1
    token = tokens[0]
    assert token.name == "default"
    assert len(token.key) == TOKEN_KEY_LENGTH
    assert token.status == TokenStatus.ENABLED
    assert token.unlimited_quota is True
    assert token.expired_time == -1
    change = await admin.wait_for_change("token")
    assert change.ids == [token.id]
    assert change.keys == [token.key]


async def test_registration_rewards_are_exact_and_logged_like_one_api(admin: AdminHarness) -> None:
    await set_options(admin, QuotaForNewUser=1_000_000, QuotaForInvitee=250_001, QuotaForInviter=3)
    inviter = await admin.add_user("inviter", quota=10)
    inviter_code = (await _user(admin, "inviter")).aff_code

    form = _form("bob", display_name="Bob B", aff_code=inviter_code, password2="ignored")
    assert_ok(await admin.client().post("/api/user/register", json=form))

    bob = await _user(admin, "bob")
    assert bob.quota == 1_000_000 + 250_001
    assert bob.inviter_id == inviter.id
    assert bob.display_name == "Bob B"
    assert bob.aff_code
    assert bob.aff_code != inviter_code
    assert (await _user(admin, "inviter")).quota == 10 + 3
    assert (await admin.wait_for_change("user")).ids == [inviter.id]

    bob_logs = sorted((log.content, log.type) for log in await _logs(admin, bob.id))
    assert bob_logs == [
        ("使用邀请码赠送 ＄0.500002 额度", LogType.SYSTEM),
        ("新用户注册赠送 ＄2.000000 额度", LogType.SYSTEM),
    ]
    inviter_logs = await _logs(admin, inviter.id)
    assert [(log.content, log.username, log.type) for log in inviter_logs] == [
        ("邀请用户赠送 ＄0.000006 额度", "inviter", LogType.SYSTEM)
    ]


async def test_rewards_are_logged_in_quota_points_when_currency_display_is_off(
    admin: AdminHarness,
) -> None:
    await set_options(admin, QuotaForNewUser=777, DisplayInCurrencyEnabled=False)
    assert_ok(await admin.client().post("/api/user/register", json=_form()))
    alice = await _user(admin, "alice")
    assert [log.content for log in await _logs(admin, alice.id)] == ["新用户注册赠送 777 点额度"]


async def test_an_unknown_aff_code_invites_nobody(admin: AdminHarness) -> None:
    await set_options(admin, QuotaForInvitee=500, QuotaForInviter=500)
    assert_ok(await admin.client().post("/api/user/register", json=_form(aff_code="nope")))
    alice = await _user(admin, "alice")
    assert (alice.quota, alice.inviter_id) == (0, 0)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("RegisterEnabled", "关闭了新用户注册"),
        ("PasswordRegisterEnabled", "关闭了通过密码进行注册"),
    ],
)
async def test_registration_can_be_closed(admin: AdminHarness, option: str, message: str) -> None:
    await set_options(admin, **{option: False})
    response = await admin.client().post("/api/user/register", json=_form())
    assert_refused(response, message=message)
    async with admin.database.session() as session:
        assert await session.scalar(select(User).where(User.username == "alice")) is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (_form(username="a" * 13), "username"),
        (_form(username="   "), "username"),
        (_form(password="short"), "password"),
        (_form(password="p" * 21), "password"),
        (_form(password="\U0001f600" * 19), "password"),  # 76 bytes: more than bcrypt takes
        (_form(display_name="d" * 21), "display_name"),
        (_form(username="al\x00ice"), "username"),
        (_form(password="s3cret\x00pass"), "password"),
        ({"password": "s3cret-pass"}, "username"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    admin: AdminHarness, form: dict[str, Any], field: str
) -> None:
    message = assert_refused(await admin.client().post("/api/user/register", json=form))
    assert field in message


async def test_a_taken_username_is_refused(admin: AdminHarness) -> None:
    await admin.add_user("alice")
    response = await admin.client().post("/api/user/register", json=_form())
    assert_refused(response, message="用户名已存在")


async def test_with_email_verification_an_address_and_its_mailed_code_are_required(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp, EmailVerificationEnabled=True)
    client = admin.client()
    response = await client.post("/api/user/register", json=_form(email="alice@example.com"))
    assert_refused(response, message="请输入邮箱地址和验证码")

    assert_ok(await client.get("/api/verification", params={"email": "alice@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])
    wrong = "000000" if code != "000000" else "111111"
    form = _form(email="alice@example.com", verification_code=wrong)
    assert_refused(await client.post("/api/user/register", json=form), message="验证码错误")

    form = _form(email="alice@example.com", verification_code=code)
    assert_ok(await client.post("/api/user/register", json=form))
    assert (await _user(admin, "alice")).email == "alice@example.com"


async def test_without_email_verification_a_given_address_is_not_taken(
    admin: AdminHarness,
) -> None:
    form = _form(email="someone.else@example.com")
    assert_ok(await admin.client().post("/api/user/register", json=form))
    assert (await _user(admin, "alice")).email == ""


async def test_an_address_another_account_holds_is_refused_at_registration(
    admin: AdminHarness, smtp: SmtpServer
) -> None:
    await use_smtp(admin, smtp, EmailVerificationEnabled=True)
    client = admin.client()
    assert_ok(await client.get("/api/verification", params={"email": "shared@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])
    # Someone else got the address (an admin edit, an OAuth login) while the code was fresh.
    await admin.add_user("first", email="shared@example.com")
    form = _form(email="shared@example.com", verification_code=code)
    assert_refused(await client.post("/api/user/register", json=form), message="邮箱地址已被占用")
