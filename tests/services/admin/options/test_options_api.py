"""`/api/option/`: root reads every option and saves checked values, all or nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from libs.common.db.models import Option, UserRole
from libs.common.events import ConfigChanged
from libs.common.pricing import DEFAULT_COMPLETION_RATIO, DEFAULT_MODEL_RATIO
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

SECRETS = {
    "SMTPToken": "smtp-secret-1",
    "GitHubClientSecret": "github-secret-2",
    "LarkClientSecret": "lark-secret-3",
    "OidcClientSecret": "oidc-secret-4",
    "WeChatServerToken": "wechat-secret-5",
    "TurnstileSecretKey": "turnstile-secret-6",
    "MessagePusherToken": "pusher-secret-7",
}


async def shown(admin: AdminHarness) -> dict[str, str]:
    """What root's settings page gets: `GET /api/option/` as a dict."""
    data = assert_ok(await admin.client(admin.root).get("/api/option/"))
    options = {item["key"]: item["value"] for item in data}
    assert len(options) == len(data), "a key is listed twice"
    return options


async def stored(admin: AdminHarness) -> dict[str, str]:
    """The `options` rows, as every service reads them."""
    async with admin.database.session() as session:
        rows = await session.execute(select(Option.key, Option.value))
        return {str(key): str(value) for key, value in rows}


async def put(admin: AdminHarness, body: Any) -> httpx.Response:
    return await admin.client(admin.root).put("/api/option/", json=body)


async def save(admin: AdminHarness, key: str, value: Any) -> None:
    assert_ok(await put(admin, {"key": key, "value": value}))


# --- reading ----------------------------------------------------------------------------------


async def test_every_option_is_listed_with_its_default_and_secrets_never(
    admin: AdminHarness,
) -> None:
    for key, value in SECRETS.items():
        await save(admin, key, value)
    response = await admin.client(admin.root).get("/api/option/")
    options = await shown(admin)

    assert options["SystemName"] == "One API"
    assert options["QuotaPerUnit"] == "500000"
    assert options["RetryTimes"] == "0"
    assert options["PreConsumedQuota"] == "500"
    assert options["RegisterEnabled"] == "true"
    assert options["SMTPPort"] == "587"
    assert options["Theme"] == "default"
    assert options["ChannelDisableThreshold"] == "5"
    assert "qq.com" in options["EmailDomainWhitelist"].split(",")
    assert json.loads(options["GroupRatio"]) == {"default": 1, "vip": 1, "svip": 1}
    assert json.loads(options["ModelRatio"]) == DEFAULT_MODEL_RATIO
    assert json.loads(options["CompletionRatio"]) == DEFAULT_COMPLETION_RATIO
    assert options["GitHubClientId"] == ""

    assert not [key for key in options if key.endswith(("Token", "Secret"))]
    assert "TurnstileSecretKey" not in options
    for secret in SECRETS.values():
        assert secret not in response.text
    assert await stored(admin) == SECRETS  # saved all the same


async def test_ratio_tables_show_the_prices_in_force(admin: AdminHarness) -> None:
    # Pricing falls back to the defaults for models root's table does not name: so does the list.
    await save(admin, "ModelRatio", '{"my-model": 3, "gpt-4": 20}')
    model_ratio = json.loads((await shown(admin))["ModelRatio"])
    assert model_ratio["my-model"] == 3
    assert model_ratio["gpt-4"] == 20
    assert model_ratio["gpt-3.5-turbo"] == DEFAULT_MODEL_RATIO["gpt-3.5-turbo"]

    # Group ratios have no fallback: a group root removes is gone.
    await save(admin, "GroupRatio", '{"default": 1, "vip": 0.5}')
    assert json.loads((await shown(admin))["GroupRatio"]) == {"default": 1, "vip": 0.5}


# --- saving -----------------------------------------------------------------------------------

ROUND_TRIPS: list[tuple[str, Any, str]] = [
    ("SystemName", "My API", "My API"),
    ("Notice", "# 公告\n\n**markdown** <b>html</b>", "# 公告\n\n**markdown** <b>html</b>"),
    ("RegisterEnabled", "false", "false"),
    ("DisplayTokenStatEnabled", False, "false"),
    ("LogConsumeEnabled", True, "true"),
    ("QuotaForNewUser", "100", "100"),
    ("QuotaForInviter", 2500, "2500"),
    ("QuotaForInvitee", " +7 ", "7"),
    ("RetryTimes", "3", "3"),
    ("SMTPPort", "465", "465"),
    ("QuotaPerUnit", "1000.5", "1000.5"),
    ("ChannelDisableThreshold", "2.50", "2.5"),
    ("ChannelDisableThreshold", 0, "0"),
    ("ServerAddress", "https://api.example.com/", "https://api.example.com/"),
    (
        "ChatLink",
        "http://127.0.0.1:3001/#/?settings={key}",
        "http://127.0.0.1:3001/#/?settings={key}",
    ),
    ("TopUpLink", "", ""),
    (
        "EmailDomainWhitelist",
        " Example.com, mail.example.org ,,example.com",
        "example.com,mail.example.org",
    ),
    ("Theme", "berry", "berry"),
    ("GroupRatio", json.dumps({"default": 1, "vip": 1.5}, indent=2), '{"default":1,"vip":1.5}'),
]


async def test_a_saved_value_is_listed_and_stored_as_one_api_spells_it(
    admin: AdminHarness,
) -> None:
    for key, sent, kept in ROUND_TRIPS:
        await save(admin, key, sent)
        assert (await shown(admin))[key] == kept, f"{key}={sent!r}"
        assert (await stored(admin))[key] == kept, f"{key}={sent!r}"


async def test_an_empty_value_clears_a_secret_as_in_one_api(admin: AdminHarness) -> None:
    # One API's front-ends send a secret only when root typed a new one; an empty one is meant.
    await save(admin, "SMTPToken", "token")
    await save(admin, "SMTPToken", "")
    assert (await stored(admin))["SMTPToken"] == ""


BAD_VALUES: list[tuple[str, Any, str]] = [
    ("NoSuchOption", "1", "未知的配置项"),
    ("RegisterEnabled", "yes", "true 或 false"),
    ("RegisterEnabled", "True", "true 或 false"),
    ("RegisterEnabled", "", "true 或 false"),
    ("QuotaForNewUser", "-1", "不能小于 0"),
    ("QuotaForNewUser", "1.5", "必须是整数"),
    ("QuotaForNewUser", "1_000", "必须是整数"),
    ("QuotaForNewUser", "", "必须是整数"),
    ("QuotaForNewUser", str(2**63), f"不能大于 {2**63 - 1}"),
    ("QuotaForNewUser", "9" * 5000, "不能大于"),
    ("QuotaRemindThreshold", -5, "不能小于 0"),
    ("PreConsumedQuota", "abc", "必须是整数"),
    ("RetryTimes", "-1", "不能小于 0"),
    ("RetryTimes", "101", "不能大于 100"),
    ("SMTPPort", "0", "不能小于 1"),
    ("SMTPPort", "65536", "不能大于 65535"),
    ("QuotaPerUnit", "0", "必须大于 0"),
    ("QuotaPerUnit", "-500000", "必须大于 0"),
    ("QuotaPerUnit", "abc", "必须是数字"),
    ("QuotaPerUnit", "nan", "必须是数字"),
    ("QuotaPerUnit", "1e999", "必须是数字"),
    ("ChannelDisableThreshold", "-0.5", "不能小于 0"),
    ("ModelRatio", "{not json", "not valid JSON"),
    ("ModelRatio", "[1, 2]", "must be a JSON object"),
    ("ModelRatio", '{"gpt-4": -1}', "non-negative"),
    ("CompletionRatio", '{"gpt-4": "2"}', "must be a number"),
    ("GroupRatio", '{"vip": null}', "must be a number"),
    ("GroupRatio", '{"vip": true}', "must be a number"),
    ("GroupRatio", "", "not valid JSON"),
    ("ServerAddress", "api.example.com", "http:// 或 https://"),
    ("ChatLink", "javascript:alert(1)", "http:// 或 https://"),
    ("TopUpLink", "ftp://files.example.com", "http:// 或 https://"),
    ("OidcTokenEndpoint", "https://exa mple.com/token", "http:// 或 https://"),
    ("WeChatServerAddress", "http://wechat.example.com:port", "http:// 或 https://"),
    ("MessagePusherAddress", "https://", "http:// 或 https://"),
    ("Theme", "pink", "无效的 Theme"),
    ("EmailDomainWhitelist", "gmail.com,not a domain", "无效的邮箱域名"),
    ("EmailDomainWhitelist", "-bad-.com", "无效的邮箱域名"),
    ("Notice", "a\x00b", "空字符"),
    ("HomePageContent", "长" * 21846, "过长"),
]


async def test_every_kind_of_bad_value_is_refused_and_nothing_is_saved(
    admin: AdminHarness,
) -> None:
    for key, value in [("QuotaForNewUser", "10"), ("RetryTimes", "2"), ("GroupRatio", '{"a":1}')]:
        await save(admin, key, value)
    before = await stored(admin)
    for key, value, reason in BAD_VALUES:
        response = await put(admin, {"key": key, "value": value})
        assert_refused(response, message=reason)
        assert await stored(admin) == before, f"{key}={value!r} changed the options"
    # JSON may escape a lone surrogate that no database can store.
    lone_surrogate = b'{"key": "Notice", "value": "lone \\ud800 surrogate"}'
    response = await admin.client(admin.root).put(
        "/api/option/", content=lone_surrogate, headers={"Content-Type": "application/json"}
    )
    assert_refused(response)
    assert await stored(admin) == before


async def test_malformed_bodies_are_refused_in_the_envelope(admin: AdminHarness) -> None:
    before = await stored(admin)
    for body in [
        {"key": "SystemName"},
        {"value": "x"},
        {"key": "SystemName", "value": None},
        {"key": "SystemName", "value": ["a"]},
        {"key": "", "value": "x"},
        [],
        "SystemName=x",
    ]:
        assert_refused(await put(admin, body), message="无效的参数")
    assert await stored(admin) == before


async def test_several_options_are_saved_together_or_not_at_all(admin: AdminHarness) -> None:
    batch = [
        {"key": "SystemName", "value": "Batch"},
        {"key": "RetryTimes", "value": "4"},
        {"key": "Footer", "value": "<p>footer</p>"},
    ]
    assert_ok(await put(admin, batch))
    options = await shown(admin)
    assert (options["SystemName"], options["RetryTimes"], options["Footer"]) == (
        "Batch",
        "4",
        "<p>footer</p>",
    )

    before = await stored(admin)
    half_good = [{"key": "SystemName", "value": "Half"}, {"key": "RetryTimes", "value": "-1"}]
    assert_refused(await put(admin, half_good), message="RetryTimes")
    twice = [{"key": "SystemName", "value": "A"}, {"key": "SystemName", "value": "B"}]
    assert_refused(await put(admin, twice), message="重复")
    assert await stored(admin) == before


# --- rules across options (One API's UpdateOption, and beyond) --------------------------------


async def test_a_login_method_cannot_be_switched_on_before_it_is_configured(
    admin: AdminHarness,
) -> None:
    refusals = {
        "GitHubOAuthEnabled": "无法启用 GitHub OAuth",
        "OidcEnabled": "无法启用 OIDC 登录",
        "WeChatAuthEnabled": "无法启用微信登录",
        "TurnstileCheckEnabled": "无法启用 Turnstile 校验",
        "EmailVerificationEnabled": "无法启用邮箱验证",
    }
    for switch, refusal in refusals.items():
        assert_refused(await put(admin, {"key": switch, "value": "true"}), message=refusal)

    await save(admin, "GitHubClientId", "client-id")
    assert_refused(await put(admin, {"key": "GitHubOAuthEnabled", "value": "true"}))
    await save(admin, "GitHubClientSecret", "client-secret")
    await save(admin, "GitHubOAuthEnabled", "true")

    await save(admin, "OidcClientId", "oidc")
    await save(admin, "OidcClientSecret", "oidc-secret")
    assert_refused(await put(admin, {"key": "OidcEnabled", "value": "true"}), message="端点")
    assert_ok(
        await put(
            admin,
            [
                {"key": "OidcAuthorizationEndpoint", "value": "https://id.example.com/auth"},
                {"key": "OidcTokenEndpoint", "value": "https://id.example.com/token"},
                {"key": "OidcUserinfoEndpoint", "value": "https://id.example.com/userinfo"},
                {"key": "OidcEnabled", "value": "true"},
            ],
        )
    )
    assert_ok(
        await put(
            admin,
            [
                {"key": "WeChatServerAddress", "value": "https://wechat.example.com"},
                {"key": "WeChatServerToken", "value": "wechat-token"},
                {"key": "WeChatAuthEnabled", "value": "true"},
                {"key": "TurnstileSiteKey", "value": "site"},
                {"key": "TurnstileSecretKey", "value": "secret"},
                {"key": "TurnstileCheckEnabled", "value": "true"},
            ],
        )
    )
    await save(admin, "SMTPServer", "smtp.example.com")
    assert_refused(await put(admin, {"key": "EmailVerificationEnabled", "value": "true"}))
    await save(admin, "SMTPFrom", "noreply@example.com")
    await save(admin, "EmailVerificationEnabled", "true")

    status = assert_ok(await admin.client().get("/api/status"))
    assert status["github_oauth"] is True
    assert status["oidc"] is True
    assert status["wechat_login"] is True
    assert status["turnstile_check"] is True
    assert status["email_verification"] is True


async def test_a_switched_on_method_keeps_its_settings_until_switched_off(
    admin: AdminHarness,
) -> None:
    await save(admin, "EmailDomainRestrictionEnabled", "true")  # the default list is not empty
    assert_refused(
        await put(admin, {"key": "EmailDomainWhitelist", "value": " , "}),
        message="EmailDomainRestrictionEnabled 已启用",
    )
    await save(admin, "GitHubClientId", "client-id")
    await save(admin, "GitHubClientSecret", "client-secret")
    await save(admin, "GitHubOAuthEnabled", "true")
    assert_refused(
        await put(admin, {"key": "GitHubClientSecret", "value": ""}),
        message="GitHubOAuthEnabled 已启用，不能清空 GitHubClientSecret",
    )
    assert (await stored(admin))["GitHubClientSecret"] == "client-secret"

    await save(admin, "GitHubOAuthEnabled", "false")
    await save(admin, "GitHubClientSecret", "")
    await save(admin, "EmailDomainRestrictionEnabled", "false")
    await save(admin, "EmailDomainWhitelist", "")


async def test_the_domain_restriction_needs_a_domain(admin: AdminHarness) -> None:
    await save(admin, "EmailDomainWhitelist", "")
    assert_refused(
        await put(admin, {"key": "EmailDomainRestrictionEnabled", "value": "true"}),
        message="无法启用邮箱域名限制",
    )
    assert_ok(
        await put(
            admin,
            [
                {"key": "EmailDomainWhitelist", "value": "example.com"},
                {"key": "EmailDomainRestrictionEnabled", "value": "true"},
            ],
        )
    )


# --- who may, and who hears about it ----------------------------------------------------------


@pytest.mark.parametrize(
    "role", [None, UserRole.COMMON, UserRole.ADMIN], ids=["guest", "common", "admin"]
)
async def test_only_root_reads_or_changes_options(admin: AdminHarness, role: int | None) -> None:
    await save(admin, "SMTPToken", "smtp-secret")
    user = None if role is None else await admin.add_user(role=role)
    client = admin.client(user)
    status_code, reason = (401, "未登录") if user is None else (200, "权限不足")

    read = await client.get("/api/option/")
    assert_refused(read, status_code=status_code, message=reason)
    assert "smtp-secret" not in read.text
    before = await stored(admin)
    write = await client.put("/api/option/", json={"key": "SystemName", "value": "Mine"})
    assert_refused(write, status_code=status_code, message=reason)
    assert await stored(admin) == before


async def test_relays_hear_of_the_change_once_it_is_committed(admin: AdminHarness) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    async def on_change(event: ConfigChanged) -> None:
        seen.append((event.keys, await stored(admin)))

    await admin.bus.subscribe(ConfigChanged, on_change)
    assert_refused(await put(admin, {"key": "RetryTimes", "value": "x"}))
    await save(admin, "RetryTimes", "3")
    change = await admin.wait_for_change("option")
    assert change.keys == ["RetryTimes"]
    assert [event.keys for event in admin.config_changes] == [["RetryTimes"]]  # not the refusal
    while not seen:
        await asyncio.sleep(0.01)
    assert seen[0][1]["RetryTimes"] == "3"  # visible to whoever reloads on the event

    admin.config_changes.clear()
    assert_ok(
        await put(
            admin,
            [{"key": "GroupRatio", "value": '{"default":2}'}, {"key": "ModelRatio", "value": "{}"}],
        )
    )
    change = await admin.wait_for_change("option")
    assert sorted(change.keys) == ["GroupRatio", "ModelRatio"]


async def test_the_public_pages_show_the_saved_options(admin: AdminHarness) -> None:
    assert_ok(
        await put(
            admin,
            [
                {"key": "SystemName", "value": "Acme AI"},
                {"key": "Logo", "value": "https://cdn.example.com/logo.png"},
                {"key": "Footer", "value": "<a href='/x'>acme</a>"},
                {"key": "ServerAddress", "value": "https://ai.example.com"},
                {"key": "TopUpLink", "value": "https://shop.example.com"},
                {"key": "ChatLink", "value": "https://chat.example.com"},
                {"key": "QuotaPerUnit", "value": "1000"},
                {"key": "DisplayInCurrencyEnabled", "value": "false"},
                {"key": "GitHubClientId", "value": "gh-client"},
                {"key": "TurnstileSiteKey", "value": "site-key"},
                {"key": "Notice", "value": "maintenance tonight"},
                {"key": "About", "value": "about acme"},
                {"key": "HomePageContent", "value": "https://home.example.com"},
            ],
        )
    )
    anonymous = admin.client()
    status = assert_ok(await anonymous.get("/api/status"))
    assert status["system_name"] == "Acme AI"
    assert status["logo"] == "https://cdn.example.com/logo.png"
    assert status["footer_html"] == "<a href='/x'>acme</a>"
    assert status["server_address"] == "https://ai.example.com"
    assert status["top_up_link"] == "https://shop.example.com"
    assert status["chat_link"] == "https://chat.example.com"
    assert status["quota_per_unit"] == 1000
    assert status["display_in_currency"] is False
    assert status["github_client_id"] == "gh-client"
    assert status["turnstile_site_key"] == "site-key"
    assert assert_ok(await anonymous.get("/api/notice")) == "maintenance tonight"
    assert assert_ok(await anonymous.get("/api/about")) == "about acme"
    assert assert_ok(await anonymous.get("/api/home_page_content")) == "https://home.example.com"
