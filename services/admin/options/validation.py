"""What `/api/option/` accepts: one value checked against its kind, and the cross-option rules.

`normalize` turns a submitted value into the text stored (numbers in one spelling, ratio tables
as compact JSON, domain lists trimmed) or refuses it. `check_prerequisites` refuses a change that
would leave a login method or check switched on without what it needs (One API's UpdateOption
checks this when a switch is turned on; here also when a needed setting is cleared while on).
Messages never repeat a submitted value: it may be a secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from urllib.parse import urlsplit

from libs.common.options import OPTIONS, OptionDef, OptionKind, OptionValues
from libs.common.pricing import InvalidRatioTableError, dump_ratio_table, parse_ratio_table
from services.admin.errors import AdminError

MAX_VALUE_BYTES: Final = 65_535
"""`options.value` is TEXT: MariaDB holds at most this many bytes."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_LABEL = 63


def definition_of(key: str) -> OptionDef:
    definition = OPTIONS.get(key)
    if definition is None:
        raise AdminError(f"未知的配置项：{key[:64]}")
    return definition


def normalize(definition: OptionDef, value: str) -> str:
    """The text to store for `value`; AdminError when it is not a valid `definition`."""
    key = definition.key
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise AdminError(f"{key} 含有无效的字符") from None
    if "\x00" in value:
        raise AdminError(f"{key} 不能包含空字符")
    if size > MAX_VALUE_BYTES:
        raise AdminError(f"{key} 过长：最多 {MAX_VALUE_BYTES} 字节")
    match definition.kind:
        case OptionKind.BOOL:
            return _boolean(key, value.strip())
        case OptionKind.INT:
            return _integer(definition, value.strip())
        case OptionKind.FLOAT:
            return _decimal(definition, value.strip())
        case OptionKind.URL:
            return _url(key, value.strip())
        case OptionKind.DOMAINS:
            return _domains(key, value)
        case OptionKind.CHOICE:
            return _choice(definition, value.strip())
        case OptionKind.RATIOS:
            return _ratios(key, value)
        case OptionKind.TEXT:
            return value


def _boolean(key: str, text: str) -> str:
    if text not in ("true", "false"):
        raise AdminError(f"{key} 只能是 true 或 false")
    return text


def _integer(definition: OptionDef, text: str) -> str:
    if not _INTEGER.fullmatch(text):
        raise AdminError(f"{definition.key} 必须是整数")
    number = Decimal(text)  # int() refuses more than 4300 digits; Decimal compares any
    _check_range(definition, number)
    return str(int(number))


def _decimal(definition: OptionDef, text: str) -> str:
    number = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(number):
        raise AdminError(f"{definition.key} 必须是数字")
    _check_range(definition, number)
    return _plain(number)


def _check_range(definition: OptionDef, number: float | Decimal) -> None:
    low, high = definition.minimum, definition.maximum
    if low is not None and definition.exclusive_minimum and number <= low:
        raise AdminError(f"{definition.key} 必须大于 {_plain(low)}")
    if low is not None and number < low:
        raise AdminError(f"{definition.key} 不能小于 {_plain(low)}")
    if high is not None and number > high:
        raise AdminError(f"{definition.key} 不能大于 {_plain(high)}")


def _plain(number: float) -> str:
    """One API's spelling of a number: 500000, not 500000.0."""
    if isinstance(number, int):
        return str(number)
    return str(int(number)) if number.is_integer() else repr(number)


def _url(key: str, text: str) -> str:
    if text and not _is_web_url(text):
        raise AdminError(f"{key} 必须是以 http:// 或 https:// 开头的完整网址")
    return text  # empty: not set


def _is_web_url(text: str) -> bool:
    if any(char.isspace() or not char.isprintable() for char in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # also a malformed IPv6 literal
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _domains(key: str, text: str) -> str:
    """A comma-separated list of mail domains, trimmed, lower-cased, without repeats."""
    domains: list[str] = []
    for item in text.split(","):
        domain = item.strip().lower()
        if not domain:
            continue
        if not _is_domain(domain):
            raise AdminError(f"{key} 含有无效的邮箱域名：{domain[:64]}")
        if domain not in domains:
            domains.append(domain)
    return ",".join(domains)


def _is_domain(domain: str) -> bool:
    return all(
        0 < len(label) <= _MAX_LABEL
        and not label.startswith("-")
        and not label.endswith("-")
        and all(char.isalnum() or char == "-" for char in label)
        for label in domain.split(".")
    )


def _choice(definition: OptionDef, text: str) -> str:
    if text not in definition.choices:
        allowed = ", ".join(sorted(definition.choices))
        raise AdminError(f"无效的 {definition.key}，可选：{allowed}")
    return text


def _ratios(key: str, text: str) -> str:
    try:
        return dump_ratio_table(parse_ratio_table(key, text))
    except InvalidRatioTableError as exc:
        raise AdminError(str(exc)) from None


# --- rules across options ---------------------------------------------------------------------


@dataclass(frozen=True)
class Prerequisite:
    """A switch that may only be on while some settings are filled in.

    `needs` is a list of groups: each group needs at least one of its options non-blank.
    """

    switch: str
    needs: tuple[tuple[str, ...], ...]
    refusal: str
    """Said when the switch is turned on too early (One API's words where it has them)."""

    def met(self, values: OptionValues) -> bool:
        return all(any(values.text(key).strip() for key in group) for group in self.needs)

    @property
    def settings(self) -> frozenset[str]:
        return frozenset(key for group in self.needs for key in group)


def _each(*keys: str) -> tuple[tuple[str, ...], ...]:
    return tuple((key,) for key in keys)


PREREQUISITES: Final = (
    Prerequisite(
        "GitHubOAuthEnabled",
        _each("GitHubClientId", "GitHubClientSecret"),
        "无法启用 GitHub OAuth，请先填入 GitHub Client Id 以及 GitHub Client Secret！",
    ),
    Prerequisite(
        "OidcEnabled",
        _each(
            "OidcClientId",
            "OidcClientSecret",
            "OidcAuthorizationEndpoint",
            "OidcTokenEndpoint",
            "OidcUserinfoEndpoint",
        ),
        "无法启用 OIDC 登录，请先填入 OIDC Client Id、Client Secret 以及授权、令牌和用户信息端点！",
    ),
    Prerequisite(
        "WeChatAuthEnabled",
        _each("WeChatServerAddress", "WeChatServerToken"),
        "无法启用微信登录，请先填入微信登录相关配置信息！",
    ),
    Prerequisite(
        "TurnstileCheckEnabled",
        _each("TurnstileSiteKey", "TurnstileSecretKey"),
        "无法启用 Turnstile 校验，请先填入 Turnstile 校验相关配置信息！",
    ),
    Prerequisite(
        "EmailDomainRestrictionEnabled",
        _each("EmailDomainWhitelist"),
        "无法启用邮箱域名限制，请先填入限制的邮箱域名！",
    ),
    Prerequisite(
        "EmailVerificationEnabled",
        (("SMTPServer",), ("SMTPFrom", "SMTPAccount")),
        "无法启用邮箱验证，请先配置 SMTP 服务器和发件人！",
    ),
)


def check_prerequisites(
    before: OptionValues, after: OptionValues, changes: Mapping[str, str]
) -> None:
    """Refuse `changes` when they leave a switch on without what it needs.

    Turning a switch on (again) is always checked, as One API does. Otherwise only a change that
    breaks a complete setup is refused: a setup already incomplete before (saved by One API,
    which checked less) can still be completed one field at a time.
    """
    for rule in PREREQUISITES:
        if not after.flag(rule.switch) or rule.met(after):
            continue
        if changes.get(rule.switch) == "true":
            raise AdminError(rule.refusal)
        if rule.met(before):
            cleared = sorted(rule.settings & changes.keys())
            raise AdminError(
                f"{rule.switch} 已启用，不能清空 {', '.join(cleared)}；请先关闭 {rule.switch}"
            )
