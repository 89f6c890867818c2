"""Who a user is at GitHub, an OIDC provider, Lark or a WeChat login server, from the one-time
code the provider handed the browser.

Each provider's function exchanges the code (with the client secret from the options) for an
access token and reads the user's profile; it returns an `ExternalIdentity` or raises an
`AdminError` that names the provider and nothing it was sent.

GitHub identities are GitHub's numeric user ids. One API stored the login name instead, which
its owner can change and someone else can then take; `legacy_subject` carries the login so an
account linked by One API is still found (and moved to the id, see the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

from pydantic import BaseModel, ValidationError, field_validator

from libs.common.options import OptionValues
from services.admin.accounts.outbound import OutboundConfig, OutboundResponse, call_json, spaced
from services.admin.errors import AdminError

MAX_SERVER_MESSAGE_CHARS: Final = 200
MAX_SUBJECT_LENGTH: Final = 191
"""The width of `users.<provider>_id`."""


class Provider(StrEnum):
    GITHUB = "github"
    OIDC = "oidc"
    LARK = "lark"
    WECHAT = "wechat"


@dataclass(frozen=True)
class ProviderInfo:
    label: str
    """How messages name the provider."""
    username_prefix: str
    default_display_name: str
    already_bound: str

    @property
    def disabled(self) -> str:
        return f"管理员未开启通过{spaced(self.label)}登录以及注册"


PROVIDERS: Final[dict[Provider, ProviderInfo]] = {
    Provider.GITHUB: ProviderInfo("GitHub", "github_", "GitHub User", "该 GitHub 账户已被绑定"),
    Provider.OIDC: ProviderInfo("OIDC", "oidc_", "OIDC User", "该 OIDC 账户已被绑定"),
    Provider.LARK: ProviderInfo("飞书", "lark_", "Lark User", "该飞书账户已被绑定"),
    Provider.WECHAT: ProviderInfo("微信", "wechat_", "WeChat User", "该微信账号已被绑定"),
}


@dataclass(frozen=True)
class ExternalIdentity:
    provider: Provider
    subject: str
    """The provider's stable id of the user, stored in `users.<provider>_id`."""
    legacy_subject: str = ""
    username: str = ""
    """A username the provider suggests (OIDC `preferred_username`)."""
    display_name: str = ""
    email: str = ""
    """An address the provider vouches for; empty when it does not."""


def is_enabled(options: OptionValues, provider: Provider) -> bool:
    """One API's switches; Lark has none and is on once a client id is configured."""
    if provider is Provider.GITHUB:
        return options.flag("GitHubOAuthEnabled")
    if provider is Provider.OIDC:
        return options.flag("OidcEnabled")
    if provider is Provider.LARK:
        return bool(options.text("LarkClientId"))
    return options.flag("WeChatAuthEnabled")


def ensure_enabled(options: OptionValues, provider: Provider) -> None:
    if not is_enabled(options, provider):
        raise AdminError(PROVIDERS[provider].disabled)


def _require_code(code: str) -> None:
    if not code:
        raise AdminError("无效的参数")


def _invalid_answer(provider: Provider) -> AdminError:
    return AdminError(f"{PROVIDERS[provider].label}返回值非法，请稍后重试！")


def _checked(identity: ExternalIdentity) -> ExternalIdentity:
    if len(identity.subject) > MAX_SUBJECT_LENGTH or "\x00" in identity.subject:
        raise _invalid_answer(identity.provider)
    return identity


def _access_token(answer: OutboundResponse, provider: Provider) -> str:
    if not isinstance(answer.body, dict):
        raise _invalid_answer(provider)
    token = answer.body.get("access_token")
    if not isinstance(token, str) or not token:
        raise AdminError(f"{PROVIDERS[provider].label}授权失败：授权码无效或已过期，请重试")
    return token


class _Profile(BaseModel):
    """Profile fields providers send as null or leave out; read as empty strings."""

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class GitHubProfile(_Profile):
    id: int
    login: str
    name: str = ""
    email: str = ""


class OidcProfile(_Profile):
    sub: str
    email: str = ""
    email_verified: bool | str = True
    name: str = ""
    preferred_username: str = ""

    @field_validator("sub", mode="before")
    @classmethod
    def _numeric_sub(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class LarkProfile(_Profile):
    open_id: str
    name: str = ""


async def github_identity(
    config: OutboundConfig, options: OptionValues, code: str
) -> ExternalIdentity:
    _require_code(code)
    label = PROVIDERS[Provider.GITHUB].label
    exchange = await call_json(
        config,
        label,
        "POST",
        config.github_token_url,
        json={
            "client_id": options.text("GitHubClientId"),
            "client_secret": options.text("GitHubClientSecret"),
            "code": code,
        },
    )
    token = _access_token(exchange, Provider.GITHUB)
    answer = await call_json(
        config, label, "GET", config.github_user_url, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        profile = GitHubProfile.model_validate(answer.body)
    except ValidationError:
        raise _invalid_answer(Provider.GITHUB) from None
    if not profile.login:
        raise _invalid_answer(Provider.GITHUB)
    return _checked(
        ExternalIdentity(
            Provider.GITHUB,
            subject=str(profile.id),
            legacy_subject=profile.login,
            display_name=profile.name,
            email=profile.email,
        )
    )


async def _oidc_endpoints(config: OutboundConfig, options: OptionValues) -> tuple[str, str]:
    """The token and userinfo endpoints: as configured, else from the discovery document."""
    token_endpoint = options.text("OidcTokenEndpoint").strip()
    userinfo_endpoint = options.text("OidcUserinfoEndpoint").strip()
    well_known = options.text("OidcWellKnown").strip()
    if (not token_endpoint or not userinfo_endpoint) and well_known:
        answer = await call_json(config, "OIDC", "GET", well_known)
        document = answer.body if isinstance(answer.body, dict) else {}
        discovered_token = document.get("token_endpoint")
        discovered_userinfo = document.get("userinfo_endpoint")
        if not token_endpoint and isinstance(discovered_token, str):
            token_endpoint = discovered_token
        if not userinfo_endpoint and isinstance(discovered_userinfo, str):
            userinfo_endpoint = discovered_userinfo
    if not token_endpoint or not userinfo_endpoint:
        raise AdminError("管理员未配置 OIDC 的 Token 端点或 Userinfo 端点")
    return token_endpoint, userinfo_endpoint


async def oidc_identity(
    config: OutboundConfig, options: OptionValues, code: str
) -> ExternalIdentity:
    _require_code(code)
    token_endpoint, userinfo_endpoint = await _oidc_endpoints(config, options)
    exchange = await call_json(
        config,
        "OIDC",
        "POST",
        token_endpoint,
        form={
            "client_id": options.text("OidcClientId"),
            "client_secret": options.text("OidcClientSecret"),
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": f"{options.text('ServerAddress').rstrip('/')}/oauth/oidc",
        },
    )
    token = _access_token(exchange, Provider.OIDC)
    answer = await call_json(
        config, "OIDC", "GET", userinfo_endpoint, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        profile = OidcProfile.model_validate(answer.body)
    except ValidationError:
        raise _invalid_answer(Provider.OIDC) from None
    if not profile.sub:
        raise _invalid_answer(Provider.OIDC)
    verified = profile.email_verified not in (False, "false")
    return _checked(
        ExternalIdentity(
            Provider.OIDC,
            subject=profile.sub,
            username=profile.preferred_username,
            display_name=profile.name,
            email=profile.email if verified else "",
        )
    )


async def lark_identity(
    config: OutboundConfig, options: OptionValues, code: str
) -> ExternalIdentity:
    _require_code(code)
    label = PROVIDERS[Provider.LARK].label
    exchange = await call_json(
        config,
        label,
        "POST",
        config.lark_token_url,
        json={
            "client_id": options.text("LarkClientId"),
            "client_secret": options.text("LarkClientSecret"),
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": f"{options.text('ServerAddress').rstrip('/')}/oauth/lark",
        },
    )
    token = _access_token(exchange, Provider.LARK)
    answer = await call_json(
        config, label, "GET", config.lark_user_url, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        profile = LarkProfile.model_validate(answer.body)
    except ValidationError:
        raise _invalid_answer(Provider.LARK) from None
    if not profile.open_id:
        raise _invalid_answer(Provider.LARK)
    return _checked(
        ExternalIdentity(Provider.LARK, subject=profile.open_id, display_name=profile.name)
    )


async def wechat_identity(
    config: OutboundConfig, options: OptionValues, code: str
) -> ExternalIdentity:
    """Ask the WeChat login server (One API's companion "wechat-server") whose code this is."""
    _require_code(code)
    server = options.text("WeChatServerAddress").strip().rstrip("/")
    if not server:
        raise AdminError("管理员未配置微信登录服务器")
    label = PROVIDERS[Provider.WECHAT].label
    answer = await call_json(
        config,
        label,
        "GET",
        f"{server}/api/wechat/user?code={quote(code, safe='')}",
        headers={"Authorization": options.text("WeChatServerToken")},
    )
    body = answer.body if isinstance(answer.body, dict) else None
    if body is None:
        raise _invalid_answer(Provider.WECHAT)
    if body.get("success") is not True:
        message = body.get("message")
        if isinstance(message, str) and message:
            raise AdminError(message[:MAX_SERVER_MESSAGE_CHARS])
        raise _invalid_answer(Provider.WECHAT)
    wechat_id = body.get("data")
    if not isinstance(wechat_id, str) or not wechat_id:
        raise AdminError("验证码错误或已过期")
    return _checked(ExternalIdentity(Provider.WECHAT, subject=wechat_id))
