"""One API's runtime options: the key/value rows of the `options` table, typed.

Options are edited by root through `/api/option/` and cached by every service. Values travel as
strings (One API's wire format); `OptionValues` reads them with their declared kind and falls back
to the default when a row is missing or unreadable. `OPTIONS` is the catalogue: a key it does not
name is not an option, and its kinds and bounds are what `/api/option/` checks before saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from libs.common.pricing import (
    COMPLETION_RATIO_OPTION,
    DEFAULT_COMPLETION_RATIO,
    DEFAULT_GROUP_RATIO,
    DEFAULT_MODEL_RATIO,
    GROUP_RATIO_OPTION,
    MODEL_RATIO_OPTION,
    dump_ratio_table,
)

INT64_MAX: Final = 2**63 - 1
"""Quota columns are BIGINT: no quota option may exceed them."""


class OptionKind(Enum):
    BOOL = "bool"  # "true" or "false"
    INT = "int"  # a whole number within [minimum, maximum]
    FLOAT = "float"  # a finite number within the bounds
    TEXT = "text"  # anything
    URL = "url"  # an absolute http(s) URL, or empty for "not set"
    DOMAINS = "domains"  # a comma-separated list of mail domains
    CHOICE = "choice"  # one of `choices`
    RATIOS = "ratios"  # a JSON object of non-negative numbers (ModelRatio, ...)


@dataclass(frozen=True)
class OptionDef:
    key: str
    kind: OptionKind
    default: str
    secret: bool = False
    """Never returned by GET /api/option/ (see `hidden`)."""
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    choices: frozenset[str] = frozenset()

    @property
    def hidden(self) -> bool:
        """Kept out of GET /api/option/: flagged secret, or named like One API's secrets."""
        return self.secret or self.key.endswith(("Token", "Secret"))


def _defs(*defs: OptionDef) -> dict[str, OptionDef]:
    return {d.key: d for d in defs}


def _count(key: str, default: str, maximum: float = INT64_MAX) -> OptionDef:
    return OptionDef(key, OptionKind.INT, default, minimum=0, maximum=maximum)


OPTIONS: Mapping[str, OptionDef] = _defs(
    # accounts and login
    OptionDef("RegisterEnabled", OptionKind.BOOL, "true"),
    OptionDef("PasswordLoginEnabled", OptionKind.BOOL, "true"),
    OptionDef("PasswordRegisterEnabled", OptionKind.BOOL, "true"),
    OptionDef("EmailVerificationEnabled", OptionKind.BOOL, "false"),
    OptionDef("EmailDomainRestrictionEnabled", OptionKind.BOOL, "false"),
    OptionDef(
        "EmailDomainWhitelist",
        OptionKind.DOMAINS,
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
    OptionDef("OidcWellKnown", OptionKind.URL, ""),
    OptionDef("OidcAuthorizationEndpoint", OptionKind.URL, ""),
    OptionDef("OidcTokenEndpoint", OptionKind.URL, ""),
    OptionDef("OidcUserinfoEndpoint", OptionKind.URL, ""),
    OptionDef("WeChatAuthEnabled", OptionKind.BOOL, "false"),
    OptionDef("WeChatServerAddress", OptionKind.URL, ""),
    OptionDef("WeChatServerToken", OptionKind.TEXT, "", secret=True),
    OptionDef("WeChatAccountQRCodeImageURL", OptionKind.URL, ""),
    OptionDef("TurnstileCheckEnabled", OptionKind.BOOL, "false"),
    OptionDef("TurnstileSiteKey", OptionKind.TEXT, ""),
    # One API returns this one (it ends in "Key"); it is as secret as the others.
    OptionDef("TurnstileSecretKey", OptionKind.TEXT, "", secret=True),
    # email
    OptionDef("SMTPServer", OptionKind.TEXT, ""),
    OptionDef("SMTPPort", OptionKind.INT, "587", minimum=1, maximum=65535),
    OptionDef("SMTPAccount", OptionKind.TEXT, ""),
    OptionDef("SMTPFrom", OptionKind.TEXT, ""),
    OptionDef("SMTPToken", OptionKind.TEXT, "", secret=True),
    # site
    OptionDef("SystemName", OptionKind.TEXT, "One API"),
    OptionDef("Logo", OptionKind.TEXT, ""),  # a URL or a path under the site
    OptionDef("Footer", OptionKind.TEXT, ""),  # HTML
    OptionDef("Notice", OptionKind.TEXT, ""),  # Markdown
    OptionDef("About", OptionKind.TEXT, ""),  # Markdown or a URL shown in a frame
    OptionDef("HomePageContent", OptionKind.TEXT, ""),  # Markdown or a URL shown in a frame
    OptionDef("ServerAddress", OptionKind.URL, ""),
    OptionDef(
        "Theme", OptionKind.CHOICE, "default", choices=frozenset({"default", "berry", "air"})
    ),
    OptionDef("TopUpLink", OptionKind.URL, ""),
    OptionDef("ChatLink", OptionKind.URL, ""),
    # money
    OptionDef("QuotaPerUnit", OptionKind.FLOAT, "500000", minimum=0, exclusive_minimum=True),
    OptionDef("DisplayInCurrencyEnabled", OptionKind.BOOL, "true"),
    OptionDef("DisplayTokenStatEnabled", OptionKind.BOOL, "true"),
    _count("QuotaForNewUser", "0"),
    _count("QuotaForInviter", "0"),
    _count("QuotaForInvitee", "0"),
    _count("QuotaRemindThreshold", "1000"),
    _count("PreConsumedQuota", "500"),
    OptionDef(MODEL_RATIO_OPTION, OptionKind.RATIOS, dump_ratio_table(DEFAULT_MODEL_RATIO)),
    OptionDef(
        COMPLETION_RATIO_OPTION, OptionKind.RATIOS, dump_ratio_table(DEFAULT_COMPLETION_RATIO)
    ),
    OptionDef(GROUP_RATIO_OPTION, OptionKind.RATIOS, dump_ratio_table(DEFAULT_GROUP_RATIO)),
    # relay and channels
    OptionDef("ApproximateTokenEnabled", OptionKind.BOOL, "false"),
    OptionDef("LogConsumeEnabled", OptionKind.BOOL, "true"),
    OptionDef("AutomaticDisableChannelEnabled", OptionKind.BOOL, "false"),
    OptionDef("AutomaticEnableChannelEnabled", OptionKind.BOOL, "false"),
    OptionDef("ChannelDisableThreshold", OptionKind.FLOAT, "5", minimum=0),
    # Every retry is another upstream call: a sane ceiling, far above any useful value.
    _count("RetryTimes", "0", maximum=100),
    # logs (beyond One API): delete logs older than this many days; 0 keeps them all
    _count("LogRetentionDays", "0", maximum=36500),
    # notifications
    OptionDef("MessagePusherAddress", OptionKind.URL, ""),
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
        except (ValueError, OverflowError):
            return int(float(OPTIONS[key].default))

    def number(self, key: str) -> float:
        try:
            return float(self.raw(key))
        except ValueError:
            return float(OPTIONS[key].default)
