"""The web UI in a real browser, against a real `oneapi run` and a fake upstream.

Each test saves a screenshot of every page it visits (tests/ui/harness.py says where), and fails
if the page tried to load anything from outside 127.0.0.1 or threw an uncaught error.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import openai
import pytest
from openai import OpenAI
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import UPSTREAM_KEY, Suite
from tests.ui.harness import PHONE, Ui, open_ui

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui")]

MODEL = "gpt-4o-mini"
CHANNEL = "fake-openai"
NEW_ROOT_PASSWORD = "ui-root-pass-1"
ADMIN_PATHS = ("/channel", "/user", "/redemption")
ROOT_PATHS = ("/setting/operation", "/setting/system", "/setting/other")
COMMON_PATHS = ("/dashboard", "/token", "/log", "/topup", "/setting")


def log_in_root(ui: Ui, suite: Suite) -> None:
    """Log in as root; change the default password if it still is (the UI insists)."""
    ui.log_in("root", suite.root_password)
    if suite.root_password == "123456":
        change_default_password(ui, suite)


def change_default_password(ui: Ui, suite: Suite) -> None:
    page = ui.page
    form = page.get_by_test_id("force-password-change")
    expect(form).to_be_visible()
    ui.shot("forced-password-change")
    page.fill("input[name=new-password]", NEW_ROOT_PASSWORD)
    page.fill("input[name=new-password-again]", NEW_ROOT_PASSWORD)
    page.get_by_test_id("force-password-submit").click()
    expect(form).to_have_count(0)
    suite.root_password = NEW_ROOT_PASSWORD


def toast(page: Page, kind: str, text: str) -> None:
    """A toast of `kind` (success, error, info) saying `text` is shown."""
    expect(page.get_by_test_id(f"toast-{kind}").filter(has_text=text).first).to_be_visible()


def root_api(suite: Suite, method: str, path: str, body: Any = None) -> Any:
    """`/api` as root, outside the browser (what a page of another engineer may not do yet)."""
    with httpx.Client(base_url=suite.url, timeout=10) as client:
        login = client.post(
            "/api/user/login", json={"username": "root", "password": suite.root_password}
        )
        assert login.json()["success"] is True, login.text
        answer = client.request(method, path, json=body).json()
    assert answer["success"] is True, answer
    return answer["data"]


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


def test_root_sets_up_a_channel_and_token_then_finds_its_request_in_logs_and_dashboard(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        ui.visit("/", "home", ready="[data-testid=home-default]")

        # The default root password must be changed before anything else.
        ui.log_in("root", suite.root_password)
        assert suite.root_password == "123456", "this test runs first in the module"
        expect(page.locator('[data-nav="/channel"]')).to_be_visible()
        change_default_password(ui, suite)
        status = ui.api("GET", "/api/status")
        assert status["root_password_is_default"] is False
        page.reload()
        expect(page.get_by_test_id("force-password-change")).to_have_count(0)

        # A channel to the fake upstream, made and tested on the channels page.
        ui.click_nav("/channel", "channels", ready="[data-testid=channel-add]")
        page.get_by_test_id("channel-add").click()
        form = page.locator("#channel-form")
        expect(form.locator("select[name=type]")).to_have_value("1")
        form.locator("input[name=name]").fill(CHANNEL)
        form.locator("input[name=base_url]").fill(suite.upstream.url)
        form.locator("textarea[name=key]").fill(UPSTREAM_KEY)
        page.get_by_test_id("channel-models").get_by_role("button", name="Clear").click()
        form.locator("input[name=custom-models]").fill(MODEL)
        form.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_test_id("channel-chosen-models")).to_have_text(f"{MODEL} ×")
        ui.shot("channel-form")
        page.get_by_test_id("channel-save").click()
        toast(page, "success", "Created 1 channel(s)")
        channel_row = page.locator("[data-testid=channels-table] tbody tr", has_text=CHANNEL)
        expect(channel_row).to_have_count(1)
        expect(channel_row.get_by_test_id("channel-status")).to_have_text("Enabled")
        channel_row.get_by_test_id("channel-test").click()
        toast(page, "success", f"Channel “{CHANNEL}” works ({MODEL})")
        expect(channel_row.get_by_test_id("channel-test")).to_have_attribute("data-tested", "yes")
        ui.shot("channel-tested")

        # A token, made and copied in the UI.
        ui.click_nav("/token", "tokens")
        page.get_by_test_id("token-add").click()
        page.fill("#token-form input[name=name]", "ui-token")
        ui.shot("token-editor")
        page.get_by_test_id("token-save").click()
        row = page.locator("[data-testid=tokens-table] tr", has_text="ui-token")
        expect(row).to_have_count(1)
        ui.shot("token-created")
        copy = row.get_by_test_id("token-copy")
        copy.click()
        key = ui.clipboard()
        assert re.fullmatch(r"sk-[A-Za-z0-9]{48}", key), key
        assert copy.get_attribute("data-copy") == key

        # Deep links for chat clients carry the key and this server's address. The menu is
        # not clipped by the table's scrolling wrapper: its last item is the topmost element.
        row.get_by_test_id("token-links").click()
        items = page.get_by_role("menuitem")
        expect(items.last).to_be_in_viewport(ratio=1)
        assert items.last.evaluate(
            "item => { const r = item.getBoundingClientRect();"
            " return item.contains(document.elementFromPoint(r.x + r.width / 2,"
            " r.y + r.height / 2)); }"
        ), "the chat-links menu is hidden behind something"
        ui.shot("token-chat-links")
        page.get_by_test_id("token-link-next").click()
        expect(items).to_have_count(0)
        link = ui.clipboard()
        assert link.startswith("https://app.nextchat.dev/#/?settings=")
        settings = json.loads(link.split("settings=", 1)[1])
        assert settings["key"] == key
        assert unquote(settings["url"]) == suite.url

        # A request with the openai SDK and that key...
        client = OpenAI(api_key=key, base_url=f"{suite.url}/v1", max_retries=0)
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello from the web UI test"}]
        )
        assert answer.choices[0].message.content
        assert answer.usage is not None
        assert suite.upstream.requests, "the request never reached the upstream"

        # ...is in the logs page (billing writes it asynchronously: search until it shows).
        ui.click_nav("/log", "logs")
        log_row = page.locator("[data-testid=logs-table] tbody tr", has_text="ui-token")

        def logged() -> bool:
            if log_row.count() == 0:
                page.get_by_test_id("logs-search").click()
                page.wait_for_timeout(300)
            return log_row.count() > 0

        wait_for(logged, 30, "the request's log row")
        expect(log_row.first).to_contain_text(MODEL)
        expect(log_row.first).to_contain_text("root")
        expect(page.get_by_test_id("logs-stat")).not_to_contain_text("$0.000000")
        ui.shot("logs-with-request")

        # ...and in the dashboard: totals, the per-model table and bars in the charts.
        ui.click_nav("/dashboard", "dashboard", ready="[data-testid=chart-requests]")
        expect(page.get_by_test_id("stat-requests")).to_have_text("1")
        expect(page.get_by_test_id("dashboard-models")).to_contain_text(MODEL)
        bars = page.locator("[data-testid=chart-requests] .recharts-bar-rectangle path")
        expect(bars.first).to_be_visible()
        ui.shot("dashboard-with-request")
        # The admin's spend by channel names the channel the request went through.
        expect(page.get_by_test_id("chart-channels")).to_contain_text(CHANNEL)
        channel_bars = page.locator("[data-testid=chart-channels] .recharts-bar-rectangle path")
        expect(channel_bars).to_have_count(1)
        for label in ("Last 30 days", "Last 90 days", "Today"):
            page.get_by_role("tab", name=label).click()
            expect(page.get_by_test_id("stat-requests")).to_have_text("1")
            expect(page.get_by_test_id("chart-channels")).to_contain_text(CHANNEL)
        ui.shot("dashboard-today")

        # Disabling the token in the UI stops the key; enabling it brings it back.
        ui.click_nav("/token", "tokens-again")
        row.get_by_role("button", name="Disable").click()
        expect(row).to_contain_text("Disabled")
        ui.shot("token-disabled")
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        row.get_by_role("button", name="Enable").click()
        expect(row).to_contain_text("Enabled")
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y"}])


def test_a_registered_user_sees_only_their_own_pages(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        ui.visit("/register", "register", ready="input[name=username]")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-pass-1")
        page.fill("input[name=password2]", "alice-pass-1")
        page.get_by_test_id("register-submit").click()
        page.wait_for_url(re.compile(r"/login$"))
        ui.log_in("alice", "alice-pass-1")
        expect(page.get_by_test_id("chart-requests")).to_be_visible()
        expect(page.get_by_test_id("chart-channels")).to_have_count(0)  # admins only
        ui.shot("alice-dashboard")

        # Navigation: the common pages, none of the admin's or root's.
        for path in ("/", *COMMON_PATHS):
            expect(page.locator(f'[data-nav="{path}"]')).to_be_visible()
        for path in ADMIN_PATHS:
            expect(page.locator(f'[data-nav="{path}"]')).to_have_count(0)

        # Admin and root pages, opened by URL, are refused; so is their API.
        for path in (*ADMIN_PATHS, *ROOT_PATHS):
            ui.visit(path, f"alice{path}", ready="[data-testid=forbidden]")
        answer = ui.api_answer("GET", "/api/channel/")
        assert answer["success"] is False
        assert ui.api_answer("GET", "/api/user/")["success"] is False

        # Settings shows the personal tab only.
        ui.visit("/setting", "alice-settings")
        expect(page.locator(".tabs a")).to_have_count(1)

        # Her tokens (registration made a default one), her logs: none of root's traffic.
        ui.visit("/token", "alice-tokens", ready="[data-testid=tokens-table]")
        ui.visit("/log", "alice-logs")
        expect(page.locator("[data-testid=logs-table] tbody tr", has_text=MODEL)).to_have_count(0)
        ui.visit("/topup", "alice-topup", ready="[data-testid=balance]")
        before = page.get_by_test_id("balance").inner_text()
        code_spec = {"name": "ui", "quota": 1_000_000, "count": 1}
        [code] = root_api(suite, "POST", "/api/redemption/", code_spec)
        page.fill("input[name=code]", code)
        page.get_by_role("button", name="Redeem").click()
        expect(page.get_by_test_id("toast-success")).to_contain_text("$2.00")
        expect(page.get_by_test_id("balance")).not_to_have_text(before)
        ui.shot("alice-topped-up")

        # Logging out sends protected pages to the login.
        page.get_by_test_id("logout").click()
        page.wait_for_url(re.compile(r"/login"))
        ui.visit("/token", "logged-out-token")
        page.wait_for_url(re.compile(r"/login\?from=%2Ftoken"))


def test_language_follows_the_browser_and_switches_and_sticks(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts, locale="zh-CN") as ui:
        page = ui.page
        ui.visit("/login", "login-zh", ready="input[name=username]")
        expect(page.locator('[data-nav="/"]')).to_have_text("首页")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        page.get_by_test_id("lang-toggle").click()
        expect(page.locator('[data-nav="/"]')).to_have_text("Home")
        expect(page.get_by_role("heading", name="Log in to your account")).to_be_visible()
        ui.shot("login-en")
        page.reload()
        expect(page.locator('[data-nav="/"]')).to_have_text("Home")

        page.get_by_test_id("lang-toggle").click()
        expect(page.locator('[data-nav="/"]')).to_have_text("首页")
        log_in_root(ui, suite)
        expect(page.locator('[data-nav="/token"]')).to_have_text("令牌")
        ui.shot("dashboard-zh")


def test_theme_switches_and_the_layout_fits_a_phone(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts, viewport=PHONE) as ui:
        page = ui.page
        log_in_root(ui, suite)
        ui.shot("phone-dashboard")
        nav = page.locator('[data-nav="/token"]')
        expect(nav).not_to_be_in_viewport()
        ui.click_nav("/token", "phone-tokens")
        ui.click_nav("/log", "phone-logs")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"

        html = page.locator("html")
        before = html.get_attribute("data-theme")
        page.get_by_test_id("theme-toggle").click()
        after = "dark" if before == "light" else "light"
        expect(html).to_have_attribute("data-theme", after)
        ui.shot(f"phone-logs-{after}")
        page.reload()
        expect(html).to_have_attribute("data-theme", after)


def test_reset_links_and_oauth_callbacks_show_the_servers_refusal(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        ui.visit("/user/reset", "reset-link-incomplete")
        expect(page.get_by_text("This reset link is incomplete")).to_be_visible()
        ui.visit("/user/reset?email=nobody%40example.com&token=forged", "reset-link-forged")
        page.get_by_role("button", name="Reset my password").click()
        expect(page.get_by_test_id("toast-error")).to_be_visible()
        expect(page.get_by_test_id("new-password")).to_have_count(0)
        ui.shot("reset-link-refused")

        ui.visit("/oauth/github?code=made-up&state=not-this-browsers", "oauth-github-refused")
        expect(page.get_by_test_id("oauth-failed")).to_contain_text("state")
        ui.visit("/oauth/unknown?code=x&state=y", "oauth-unknown")
        expect(page.get_by_test_id("oauth-failed")).to_be_visible()

        ui.visit("/reset", "reset-request", ready="input[name=email]")
        page.fill("input[name=email]", "nobody@example.com")
        page.get_by_role("button", name="Send the reset email").click()
        ui.shot("reset-request-answered")


def test_home_shows_the_operators_notice_and_content_as_sanitized_markdown(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    hostile = '<img src="/x.png" onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    options = {
        "Notice": "**Maintenance** tonight",
        "HomePageContent": f"# Welcome\n\n- fast\n- cheap\n\n[docs](/about)\n\n{hostile}",
    }
    for key, value in options.items():
        root_api(suite, "PUT", "/api/option/", {"key": key, "value": value})
    try:
        with open_ui(browser, suite.url, artifacts) as ui:
            page = ui.page
            ui.visit("/", "home-markdown", ready=".markdown h1")
            expect(page.locator(".notice strong")).to_have_text("Maintenance")
            expect(page.locator(".markdown h1")).to_have_text("Welcome")
            expect(page.locator(".markdown li")).to_have_count(2)
            expect(page.locator(".markdown a[href='/about']")).to_have_attribute(
                "rel", "noopener noreferrer"
            )
            expect(page.locator(".markdown script")).to_have_count(0)
            assert page.locator(".markdown img").get_attribute("onerror") is None
            assert page.evaluate("window.__pwned") is None
    finally:
        for key in options:
            root_api(suite, "PUT", "/api/option/", {"key": key, "value": ""})


def test_every_page_loads_nothing_from_outside_the_server(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        for path in ("/", "/about", "/login", "/register", "/reset", "/user/reset"):
            ui.visit(path, f"visitor{path}")
        log_in_root(ui, suite)
        for path in (*COMMON_PATHS, *ADMIN_PATHS, *ROOT_PATHS, "/setting/personal", "/nowhere"):
            ui.visit(path, f"root{path}")
        ui.page.get_by_test_id("theme-toggle").click()
        ui.visit("/dashboard", "root-dashboard-other-theme")
        # open_ui's exit asserts that not one request left 127.0.0.1.
    assert not ui.external
    assert len(ui.shots) >= 20
