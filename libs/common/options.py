"""One API's runtime options: the key/value rows of the `options` table, typed.

Options are edited by root through `/api/option/` and cached by every service. Values travel as
strings (One API's wire format); `OptionValues` reads them with their declared kind and falls back
to the default when a row is missing or unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class OptionKind(Enum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True)
class OptionDef:
    key: str
    kind: OptionKind
    default: str
    secret: bool = False  # never returned by GET /api/option/


def _defs(*defs: OptionDef) -> dict[str, OptionDef]:
    return {d.key: d for d in defs}


OPTIONS: Mapping[str, OptionDef] = _defs(
    # accounts and login
    OptionDef("RegisterEnabled", OptionKind.BOOL, "true"),
    OptionDef("PasswordLoginEnabled", OptionKind.BOOL, "true"),
    OptionDef("PasswordRegisterEnabled", OptionKind.BOOL, "true"),
    OptionDef("EmailVerificationEnabled", OptionKind.BOOL, "false"),
    OptionDef("EmailDomainRestrictionEnabled", OptionKind.BOOL, "false"),
    OptionDef(
        "EmailDomainWhitelist",
        OptionKind.TEXT,
        "gmail.com,163.com,126.com,qq.com,outlook.com,hotmail.com,icloud.com,yahoo.com,foxmail.com",
    ),
    OptionDef("GitHubOAuthEnabled", OptionKind.BOOL, "false"),
    OptionDef("GitHubClientId", OptionKind.TEXT, ""),
    OptionDef("GitHubClientSecret", OptionKind.TEXT, "", secret=True),
    OptionDef("LarkClientId", OptionKind.TEXT, ""),
    OptionDef("LarkClientSecret", OptionKind.TEXT, "", secret=True),
    OptionDef("OidcEnabled", OptionKind.BOOL, "false"),
    OptionDef("OidcClientId", OptionKind.TEXT, ""),
    OptionDef("OidcClientSecret", OptionKind.TEXT, "", secret=True),
    OptionDef("OidcWellKnown", OptionKind.TEXT, ""),
    OptionDef("OidcAuthorizationEndpoint", OptionKind.TEXT, ""),
    OptionDef("OidcTokenEndpoint", OptionKind.TEXT, ""),
    OptionDef("OidcUserinfoEndpoint", OptionKind.TEXT, ""),
    OptionDef("WeChatAuthEnabled", OptionKind.BOOL, "false"),
    OptionDef("WeChatServerAddress", OptionKind.TEXT, ""),
    OptionDef("WeChatServerToken", OptionKind.TEXT, "", secret=True),
    OptionDef("WeChatAccountQRCodeImageURL", OptionKind.TEXT, ""),
    OptionDef("TurnstileCheckEnabled", OptionKind.BOOL, "false"),
    OptionDef("TurnstileSiteKey", OptionKind.TEXT, ""),
    OptionDef("TurnstileSecretKey", OptionKind.TEXT, "", secret=True),
    # email
    OptionDef("SMTPServer", OptionKind.TEXT, ""),
    OptionDef("SMTPPort", OptionKind.INT, "587"),
    OptionDef("SMTPAccount", OptionKind.TEXT, ""),
    OptionDef("SMTPFrom", OptionKind.TEXT, ""),
    OptionDef("SMTPToken", OptionKind.TEXT, "", secret=True),
    # site
    OptionDef("SystemName", OptionKind.TEXT, "One API"),
    OptionDef("Logo", OptionKind.TEXT, ""),
    OptionDef("Footer", OptionKind.TEXT, ""),
    OptionDef("Notice", OptionKind.TEXT, ""),
    OptionDef("About", OptionKind.TEXT, ""),
    OptionDef("HomePageContent", OptionKind.TEXT, ""),
    OptionDef("ServerAddress", OptionKind.TEXT, ""),
    OptionDef("Theme", OptionKind.TEXT, "default"),
    OptionDef("TopUpLink", OptionKind.TEXT, ""),
    OptionDef("ChatLink", OptionKind.TEXT, ""),
    # money
    OptionDef("QuotaPerUnit", OptionKind.FLOAT, "500000"),
    OptionDef("DisplayInCurrencyEnabled", OptionKind.BOOL, "true"),
    OptionDef("DisplayTokenStatEnabled", OptionKind.BOOL, "true"),
    OptionDef("QuotaForNewUser", OptionKind.INT, "0"),
    OptionDef("QuotaForInviter", OptionKind.INT, "0"),
    OptionDef("QuotaForInvitee", OptionKind.INT, "0"),
    OptionDef("QuotaRemindThreshold", OptionKind.INT, "1000"),
    OptionDef("PreConsumedQuota", OptionKind.INT, "500"),
    OptionDef("ModelRatio", OptionKind.JSON, "{}"),
    OptionDef("CompletionRatio", OptionKind.JSON, "{}"),
    OptionDef("GroupRatio", OptionKind.JSON, '{"default":1,"vip":1,"svip":1}'),
    # relay and channels
    OptionDef("ApproximateTokenEnabled", OptionKind.BOOL, "false"),
    OptionDef("LogConsumeEnabled", OptionKind.BOOL, "true"),
    OptionDef("AutomaticDisableChannelEnabled", OptionKind.BOOL, "false"),
    OptionDef("AutomaticEnableChannelEnabled", OptionKind.BOOL, "false"),
    OptionDef("ChannelDisableThreshold", OptionKind.FLOAT, "5"),
    OptionDef("RetryTimes", OptionKind.INT, "0"),
    # notifications
    OptionDef("MessagePusherAddress", OptionKind.TEXT, ""),
    OptionDef("MessagePusherToken", OptionKind.TEXT, "", secret=True),
)


class OptionValues:
    """A snapshot of option values with typed, defaulted access."""

    def __init__(self, raw: Mapping[str, str] | None = None) -> None:
        self._raw = dict(raw or {})

    def raw(self, key: str) -> str:
        value = self._raw.get(key)
        return OPTIONS[key].default if value is None else value

    def text(self, key: str) -> str:
        return self.raw(key)

    def flag(self, key: str) -> bool:
        return self.raw(key) == "true"

    def integer(self, key: str) -> int:
        try:
            return int(float(self.raw(key)))
        except ValueError:
            return int(float(OPTIONS[key].default))

    def number(self, key: str) -> float:
        try:
            return float(self.raw(key))
        except ValueError:
            return float(OPTIONS[key].default)
