"""The rules of the account flows. Functions write through the unit of work and never commit.

Decisions beyond (or against) One API:

* A new user gets a default token named "default" that is unlimited and never expires, as in
  One API (new-api caps it at the user's quota instead): the user's own quota still bounds what
  it can spend, so a cap on the token only makes the first top-up look broken.
* No access token is created at registration (One API creates one): a credential nobody asked
  for is only a secret lying around; the user makes one with `GET /api/user/token`.
* The invitee's rewards are part of the inserted row (`QuotaForNewUser + QuotaForInvitee`); the
  inviter's reward is an atomic increment in the same transaction. Each grant is logged as One
  API does (system logs).
* Emails compare case-insensitively; a registration refuses an address another account holds
  (One API checks only when mailing the code).
* A password-reset request answers the same whether or not the address has an account (One
  API says "该邮箱地址未注册"); the mail is sent after the answer.
* An identity from GitHub is the numeric user id (One API stores the renameable login; such rows
  are still found by login, and moved to the id on their next login).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import (
    DEFAULT_GROUP,
    NEVER_EXPIRES,
    Log,
    LogType,
    Token,
    TokenStatus,
    User,
    UserRole,
    UserStatus,
)
from libs.common.db.seed import generate_aff_code
from libs.common.mail import MailError, SmtpConfig, send_mail
from libs.common.options import OptionValues
from services.admin.accounts import repository
from services.admin.accounts.codes import (
    CodePurpose,
    VerificationCodes,
    new_reset_token,
    new_verification_code,
)
from services.admin.accounts.emails import (
    Message,
    password_reset_message,
    verification_message,
)
from services.admin.accounts.oauth import PROVIDERS, ExternalIdentity
from services.admin.accounts.schemas import (
    DISPLAY_NAME_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    RegisterRequest,
)
from services.admin.deps import UnitOfWork
from services.admin.errors import AdminError
from services.admin.options.service import describe_quota
from services.admin.security import hash_password, new_secret, new_token_key, verify_password

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_NAME: Final = "default"  # noqa: S105 (a name, not a secret)
RESET_PASSWORD_LENGTH: Final = 12
_EMAIL: Final = re.compile(
    r"[^@\s<>()\[\],;:\"\\\x00-\x1f\x7f]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)

LOGIN_REFUSED: Final = "用户名或密码错误，或用户已被封禁"
CODE_REFUSED: Final = "验证码错误或已过期"
RESET_REFUSED: Final = "重置链接非法或已过期"
EMAIL_TAKEN: Final = "邮箱地址已被占用"
REGISTRATION_CLOSED: Final = "管理员关闭了新用户注册"
USER_DISABLED: Final = "用户已被封禁"


# --- addresses and mail -------------------------------------------------------------------------


def parse_email(raw: str) -> str:
    """`raw` without surrounding spaces, when it is an address; refused otherwise."""
    email = raw.strip()
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(email):
        raise AdminError("无效的参数：邮箱地址格式不正确")
    return email


def _check_domain_allowed(options: OptionValues, email: str) -> None:
    if not options.flag("EmailDomainRestrictionEnabled"):
        return
    domain = email.rsplit("@", 1)[1].lower()
    allowed = {
        entry.strip().lower()
        for entry in options.text("EmailDomainWhitelist").split(",")
        if entry.strip()
    }
    if domain not in allowed:
        raise AdminError("管理员启用了邮箱域名白名单，您的邮箱地址的域名不在白名单中")


def _smtp(options: OptionValues) -> SmtpConfig:
    config = SmtpConfig.from_options(options)
    if not config.configured:
        raise AdminError("SMTP 服务器未配置，无法发送邮件")
    return config


@dataclass(frozen=True)
class OutgoingMail:
    """A message to send once the request is answered."""

    config: SmtpConfig
    to: str
    message: Message


async def deliver(mail: OutgoingMail) -> None:
    """Send `mail`; a failure is logged, the request that wanted it has been answered."""
    try:
        await send_mail(mail.config, [mail.to], mail.message.subject, mail.message.html)
    except MailError as exc:
        logger.warning("could not send %r: %s", mail.message.subject, exc)


async def send_email_verification(
    session: AsyncSession, options: OptionValues, codes: VerificationCodes, raw_email: str
) -> None:
    """Mail a code proving the caller owns `raw_email` (registration, binding an address)."""
    email = parse_email(raw_email)
    _check_domain_allowed(options, email)
    if await repository.email_taken(session, email):
        raise AdminError(EMAIL_TAKEN)
    config = _smtp(options)
    code = new_verification_code()
    await codes.issue(CodePurpose.EMAIL_VERIFICATION, email, code)
    message = verification_message(options.text("SystemName"), code)
    try:
        await send_mail(config, [email], message.subject, message.html)
    except MailError as exc:
        logger.warning("could not send a verification code: %s", exc)
        raise AdminError("邮件发送失败，请检查邮箱地址或稍后重试") from None


async def request_password_reset(
    session: AsyncSession, options: OptionValues, codes: VerificationCodes, raw_email: str
) -> OutgoingMail | None:
    """The reset mail for `raw_email`, or None when no account has that address.

    The caller answers the same either way, so the answer does not tell who has an account.
    """
    email = parse_email(raw_email)
    config = _smtp(options)
    server_address = options.text("ServerAddress").strip().rstrip("/")
    if not server_address:
        # Never the request's Host header: a forged one would mail a link to another site.
        raise AdminError("管理员未设置服务器地址（ServerAddress），无法发送重置链接")
    if not await repository.users_with_email(session, email):
        return None
    token = new_reset_token()
    await codes.issue(CodePurpose.PASSWORD_RESET, email, token)
    link = f"{server_address}/user/reset?email={quote(email, safe='@')}&token={token}"
    return OutgoingMail(config, email, password_reset_message(options.text("SystemName"), link))


async def reset_password(
    uow: UnitOfWork, codes: VerificationCodes, raw_email: str, token: str
) -> str:
    """Give every account with the address a new random password, and return it.

    The password hash changes, so every session of those accounts ends.
    """
    email = raw_email.strip()
    if not await codes.consume(CodePurpose.PASSWORD_RESET, email, token):
        raise AdminError(RESET_REFUSED)
    users = await repository.users_with_email(uow.session, email)
    if not users:
        raise AdminError(RESET_REFUSED)
    password = new_secret(RESET_PASSWORD_LENGTH)
    hashed = await asyncio.to_thread(hash_password, password)
    for user in users:
        user.password = hashed
    return password


async def bind_email(
    uow: UnitOfWork, codes: VerificationCodes, user_id: int, raw_email: str, code: str
) -> None:
    email = parse_email(raw_email)
    if await repository.email_taken(uow.session, email, except_user_id=user_id):
        raise AdminError(EMAIL_TAKEN)
    if not await codes.consume(CodePurpose.EMAIL_VERIFICATION, email, code):
        raise AdminError(CODE_REFUSED)
    user = await uow.session.get(User, user_id)
    if user is None:
        raise AdminError("用户不存在")
    user.email = email


# --- creating users -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUser:
    username: str
    password_hash: str
    """Empty for users who sign in through a provider only (no password can match it)."""
    display_name: str
    email: str = ""
    inviter: User | None = None
    identity: ExternalIdentity | None = None


def _system_log(user_id: int, username: str, content: str) -> Log:
    # The amount is in the text only, as in One API: `quota` sums are about consumption.
    return Log(
        user_id=user_id,
        username=username,
        created_at=int(time.time()),
        type=LogType.SYSTEM,
        content=content,
    )


async def create_user(uow: UnitOfWork, options: OptionValues, new: NewUser) -> User:
    """Insert a common user with One API's gifts: `QuotaForNewUser`, the invitation rewards
    (`QuotaForInvitee` to the new user, `QuotaForInviter` to the inviter), a fresh invitation
    code of its own, and a default token. Shared by every way of registering.
    """
    session = uow.session
    new_user_quota = max(options.integer("QuotaForNewUser"), 0)
    invitee_reward = max(options.integer("QuotaForInvitee"), 0) if new.inviter else 0
    inviter_reward = max(options.integer("QuotaForInviter"), 0) if new.inviter else 0
    user = User(
        username=new.username,
        password=new.password_hash,
        display_name=new.display_name,
        email=new.email,
        role=UserRole.COMMON,
        status=UserStatus.ENABLED,
        quota=new_user_quota + invitee_reward,
        group=DEFAULT_GROUP,
        aff_code=generate_aff_code(),
        inviter_id=new.inviter.id if new.inviter else 0,
    )
    if new.identity is not None:
        column = repository.EXTERNAL_ID_COLUMNS[new.identity.provider].key
        setattr(user, column, new.identity.subject)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        # Another registration took the name between our check and this insert.
        raise AdminError("用户名已存在") from None

    now = int(time.time())
    token = Token(
        user_id=user.id,
        key=new_token_key(),
        status=TokenStatus.ENABLED,
        name=DEFAULT_TOKEN_NAME,
        created_time=now,
        accessed_time=now,
        expired_time=NEVER_EXPIRES,
        remain_quota=0,
        unlimited_quota=True,
    )
    session.add(token)
    await session.flush()
    uow.changed("token", ids=[token.id], keys=[token.key])

    if new_user_quota > 0:
        content = f"新用户注册赠送 {describe_quota(new_user_quota, options)}"
        uow.record(_system_log(user.id, user.username, content))
    if new.inviter is not None:
        if invitee_reward > 0:
            content = f"使用邀请码赠送 {describe_quota(invitee_reward, options)}"
            uow.record(_system_log(user.id, user.username, content))
        if inviter_reward > 0:
            await repository.add_quota(session, new.inviter.id, inviter_reward)
            uow.changed("user", ids=[new.inviter.id])
            content = f"邀请用户赠送 {describe_quota(inviter_reward, options)}"
            uow.record(_system_log(new.inviter.id, new.inviter.username, content))
    return user


async def register(
    uow: UnitOfWork, options: OptionValues, codes: VerificationCodes, form: RegisterRequest
) -> User:
    """`POST /api/user/register` with One API's switches and email verification."""
    if not options.flag("RegisterEnabled"):
        raise AdminError(REGISTRATION_CLOSED)
    if not options.flag("PasswordRegisterEnabled"):
        raise AdminError("管理员关闭了通过密码进行注册，请使用第三方账户验证的形式进行注册")
    session = uow.session
    email = ""
    if options.flag("EmailVerificationEnabled"):
        # Without verification an address is not taken at all: nobody claims someone else's.
        if not form.email or not form.verification_code:
            raise AdminError("管理员开启了邮箱验证，请输入邮箱地址和验证码")
        email = parse_email(form.email)
    if await repository.username_taken(session, form.username):
        raise AdminError("用户名已存在")
    if email:
        if await repository.email_taken(session, email):
            raise AdminError(EMAIL_TAKEN)
        if not await codes.consume(CodePurpose.EMAIL_VERIFICATION, email, form.verification_code):
            raise AdminError(CODE_REFUSED)
    inviter = await repository.find_inviter(session, form.aff_code.strip())
    password_hash = await asyncio.to_thread(hash_password, form.password)
    return await create_user(
        uow,
        options,
        NewUser(
            username=form.username,
            password_hash=password_hash,
            display_name=form.display_name.strip() or form.username,
            email=email,
            inviter=inviter,
        ),
    )


# --- signing in -----------------------------------------------------------------------------


@functools.cache
def _decoy_hash() -> str:
    """Checked when no user matches, so a login takes as long whether or not the name exists."""
    return hash_password(secrets.token_urlsafe(16))


async def authenticate(
    session: AsyncSession, options: OptionValues, name: str, password: str
) -> User:
    """The enabled user `name` (a username or an address) whose password is `password`."""
    if not options.flag("PasswordLoginEnabled"):
        raise AdminError("管理员关闭了密码登录")
    user = await repository.find_for_login(session, name.strip())
    hashed = user.password if user is not None else await asyncio.to_thread(_decoy_hash)
    matches = await asyncio.to_thread(verify_password, password, hashed)
    if user is None or not matches or user.status != UserStatus.ENABLED:
        raise AdminError(LOGIN_REFUSED)
    return user


async def _linked_user(session: AsyncSession, identity: ExternalIdentity) -> User | None:
    user = await repository.find_by_external_id(session, identity.provider, identity.subject)
    # A login of digits only could equal another user's numeric id: never read it as a login.
    if user is None and identity.legacy_subject and not identity.legacy_subject.isdigit():
        user = await repository.find_by_external_id(
            session, identity.provider, identity.legacy_subject
        )
    return user


def _printable(text: str) -> str:
    """A provider's text without control characters (PostgreSQL refuses NUL in text)."""
    return "".join(char for char in text if char.isprintable()).strip()


async def _free_username(session: AsyncSession, identity: ExternalIdentity) -> str:
    """The provider's suggestion when free, else One API's `github_<next id>` style."""
    wanted = _printable(identity.username)
    if (
        wanted
        and len(wanted) <= USERNAME_MAX_LENGTH
        and not await repository.username_taken(session, wanted)
    ):
        return wanted
    prefix = PROVIDERS[identity.provider].username_prefix
    candidate = f"{prefix}{await repository.max_user_id(session) + 1}"
    if not await repository.username_taken(session, candidate):
        return candidate
    return f"{prefix}{secrets.token_hex(4)}"


async def _unclaimed_email(session: AsyncSession, raw_email: str) -> str:
    try:
        email = parse_email(raw_email) if raw_email else ""
    except AdminError:
        return ""
    if email and await repository.email_taken(session, email):
        return ""
    return email


async def sign_in_with(uow: UnitOfWork, options: OptionValues, identity: ExternalIdentity) -> User:
    """The user linked to `identity`, registered on the spot when `RegisterEnabled`."""
    session = uow.session
    user = await _linked_user(session, identity)
    column = repository.EXTERNAL_ID_COLUMNS[identity.provider].key
    if user is not None and getattr(user, column) != identity.subject:
        setattr(user, column, identity.subject)  # a One API row found by login: move to the id
    if user is None:
        if not options.flag("RegisterEnabled"):
            raise AdminError(REGISTRATION_CLOSED)
        info = PROVIDERS[identity.provider]
        display_name = _printable(identity.display_name)[:DISPLAY_NAME_MAX_LENGTH]
        user = await create_user(
            uow,
            options,
            NewUser(
                username=await _free_username(session, identity),
                password_hash="",
                display_name=display_name or info.default_display_name,
                email=await _unclaimed_email(session, identity.email),
                identity=identity,
            ),
        )
    if user.status != UserStatus.ENABLED:
        raise AdminError(USER_DISABLED)
    return user


async def bind_identity(uow: UnitOfWork, user_id: int, identity: ExternalIdentity) -> None:
    """Link `identity` to the signed-in user, unless some account already has it."""
    if await _linked_user(uow.session, identity) is not None:
        raise AdminError(PROVIDERS[identity.provider].already_bound)
    user = await uow.session.get(User, user_id)
    if user is None:
        raise AdminError("用户不存在")
    setattr(user, repository.EXTERNAL_ID_COLUMNS[identity.provider].key, identity.subject)
