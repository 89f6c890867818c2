"""The admin pages in a real browser: channels, users, redemptions and the four settings tabs.

Same fixtures as test_ui.py (a real `oneapi run`, the fake OpenAI upstream, Debian's Chromium).
Each test saves a screenshot of every page it visits, and fails if the page tried to load
anything from outside 127.0.0.1 or threw an uncaught error (`open_ui`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.ui.conftest import UPSTREAM_KEY, Suite
from tests.ui.harness import PHONE, Ui, open_ui

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ui")]

NEW_ROOT_PASSWORD = "ui-admin-pass-1"
MODELS = ("gpt-4o-mini", "gpt-4o")


def log_in_root(ui: Ui, suite: Suite) -> None:
    """Log in as root; change the default password first if it still is (the UI insists)."""
    ui.log_in("root", suite.root_password)
    if suite.root_password == "123456":
        form = ui.page.get_by_test_id("force-password-change")
        expect(form).to_be_visible()
        ui.page.fill("input[name=new-password]", NEW_ROOT_PASSWORD)
        ui.page.fill("input[name=new-password-again]", NEW_ROOT_PASSWORD)
        ui.page.get_by_test_id("force-password-submit").click()
        expect(form).to_have_count(0)
        suite.root_password = NEW_ROOT_PASSWORD


def toast(page: Page, kind: str, text: str | re.Pattern[str]) -> None:
    """A toast of `kind` (success, error, info) saying `text` is shown."""
    expect(page.get_by_test_id(f"toast-{kind}").filter(has_text=text).first).to_be_visible()


def dismiss_toasts(page: Page) -> None:
    """Close the toasts shown, so the next check sees only new ones."""
    buttons = page.locator("[data-testid^=toast-] button")
    deadline = time.monotonic() + 10
    while buttons.count() and time.monotonic() < deadline:
        with contextlib.suppress(PlaywrightError):  # it may time out by itself meanwhile
            buttons.first.click(timeout=1000)
    expect(page.locator("[data-testid^=toast-]")).to_have_count(0)


def row(page: Page, table: str, text: str) -> Locator:
    return page.locator(f"[data-testid={table}] tbody tr", has_text=text)


def status_badge(page: Page, area: str, status: int) -> Locator:
    """The status cell of `area`'s rows (`data-testid={area}-status`) showing `status`."""
    return page.locator(f"[data-testid={area}-status][data-status='{status}']")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


def channel_named(ui: Ui, name: str) -> dict[str, Any]:
    channels: list[dict[str, Any]] = ui.api("GET", f"/api/channel/search?keyword={name}")
    [channel] = [c for c in channels if c["name"] == name]
    return channel


def options(ui: Ui) -> dict[str, str]:
    return {item["key"]: item["value"] for item in ui.api("GET", "/api/option/")}


def test_channels_page_creates_tests_refreshes_and_disables_a_channel(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        log_in_root(ui, suite)
        ui.click_nav("/channel", "channels-empty")

        # Create a channel to the fake upstream in the form.
        page.get_by_test_id("channel-add").click()
        form = page.locator("#channel-form")
        expect(form.locator("select[name=type]")).to_have_value("1")
        expect(form.locator("input[name=base_url]")).to_have_attribute(
            "placeholder", "https://api.openai.com"
        )
        form.locator("input[name=name]").fill("ui-fake")
        form.locator("input[name=base_url]").fill(suite.upstream.url)
        form.locator("textarea[name=key]").fill(UPSTREAM_KEY)
        page.get_by_test_id("channel-models").get_by_role("button", name="Clear").click()
        form.locator("input[name=custom-models]").fill(", ".join(MODELS))
        form.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_test_id("channel-models")).to_contain_text("2 selected")
        expect(page.get_by_test_id("channel-chosen-models")).to_have_text("gpt-4o-mini ×gpt-4o ×")

        # A model mapping that is not JSON is shown as such and refused before any request.
        mapping = form.locator("textarea[name=model_mapping]")
        mapping.fill('{"gpt-4o": ')
        expect(page.get_by_test_id("channel-mapping-error")).to_contain_text("Not valid JSON")
        ui.shot("channel-form-bad-mapping")
        page.get_by_test_id("channel-save").click()
        toast(page, "error", "Model mapping refused")
        assert ui.api("GET", "/api/channel/") == []
        mapping.fill('{"gpt-4o": "gpt-4o-mini"}')
        expect(page.get_by_test_id("channel-mapping-error")).to_have_text("Valid JSON")
        ui.shot("channel-form")
        page.get_by_test_id("channel-save").click()
        toast(page, "success", "Created 1 channel(s)")
        fake = row(page, "channels-table", "ui-fake")
        expect(fake).to_have_count(1)
        expect(fake.get_by_test_id("channel-status")).to_have_text("Enabled")
        expect(fake.get_by_test_id("channel-test")).to_have_text("Not tested")
        ui.shot("channel-created")
        stored = channel_named(ui, "ui-fake")
        assert stored["models"] == ",".join(MODELS)
        assert stored["base_url"] == suite.upstream.url
        assert stored["model_mapping"] == '{"gpt-4o": "gpt-4o-mini"}'
        assert stored["key"] == ""  # keys are never sent back

        # Click the response time: the channel is tested (its first model) and timed, in green.
        dismiss_toasts(page)
        fake.get_by_test_id("channel-test").click()
        toast(page, "success", re.compile(r"Channel “ui-fake” works \(gpt-4o-mini\)"))
        expect(fake.get_by_test_id("channel-test")).to_have_attribute("data-tested", "yes")
        expect(fake.get_by_test_id("channel-test")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
        expect(fake.get_by_test_id("channel-test")).to_have_class(re.compile("badge-green"))
        assert channel_named(ui, "ui-fake")["test_time"] > 0
        assert suite.upstream.last_request is not None
        assert suite.upstream.last_request.key == UPSTREAM_KEY

        # Test with a model picked from the channel's models.
        fake.get_by_test_id("channel-test-menu").click()
        expect(page.get_by_role("dialog")).to_contain_text("Test “ui-fake” with a model")
        ui.shot("channel-test-model-pick")
        page.get_by_test_id("channel-test-model-gpt-4o").click()
        toast(page, "success", re.compile(r"works \(gpt-4o\)"))

        # Click the balance: it is queried from the upstream's billing endpoints.
        fake.get_by_test_id("channel-balance").click()
        expect(fake.get_by_test_id("channel-balance")).to_have_text("$87.50")
        toast(page, "success", "balance: $87.50")
        assert channel_named(ui, "ui-fake")["balance"] == pytest.approx(87.5)

        # Inline priority, saved on Enter.
        priority = fake.get_by_test_id("channel-priority")
        priority.fill("7")
        priority.press("Enter")
        toast(page, "success", "priority set to 7")
        assert channel_named(ui, "ui-fake")["priority"] == 7

        # Edit: the key field is empty and the stored key stays (the test still passes).
        fake.get_by_test_id("channel-edit").click()
        expect(form.locator("input[name=key]")).to_have_value("")
        expect(form.locator("input[name=name]")).to_have_value("ui-fake")
        ui.shot("channel-edit")
        form.locator("input[name=name]").fill("ui-fake-2")
        form.locator("input[name=weight]").fill("3")
        page.get_by_test_id("channel-save").click()
        toast(page, "success", "Channel updated")
        renamed = row(page, "channels-table", "ui-fake-2")
        expect(renamed).to_have_count(1)
        edited = channel_named(ui, "ui-fake-2")
        assert (edited["weight"], edited["priority"]) == (3, 7)
        tested = ui.api_answer("GET", f"/api/channel/test/{edited['id']}")
        assert tested["success"] is True, tested

        # Disable, then enable again.
        renamed.get_by_test_id("channel-disable").click()
        expect(renamed.get_by_test_id("channel-status")).to_have_text("Disabled")
        assert channel_named(ui, "ui-fake-2")["status"] == 2
        ui.shot("channel-disabled")
        renamed.get_by_test_id("channel-enable").click()
        expect(renamed.get_by_test_id("channel-status")).to_have_text("Enabled")

        # Two keys on two lines make two channels; disabled, "delete disabled" removes them.
        page.get_by_test_id("channel-add").click()
        form.locator("input[name=name]").fill("ui-batch")
        form.locator("input[name=base_url]").fill(suite.upstream.url)
        form.locator("textarea[name=key]").fill("sk-batch-one\nsk-batch-two")
        page.get_by_test_id("channel-save").click()
        toast(page, "success", "Created 2 channel(s)")
        batch = row(page, "channels-table", "ui-batch")
        expect(batch).to_have_count(2)
        for index in range(2):
            batch.nth(index).get_by_test_id("channel-disable").click()
            expect(batch.nth(index).get_by_test_id("channel-status")).to_have_text("Disabled")
        page.get_by_test_id("channel-delete-disabled").click()
        expect(page.get_by_role("dialog")).to_contain_text("Delete every disabled channel")
        ui.shot("channel-delete-disabled-confirm")
        page.get_by_test_id("confirm-yes").click()
        toast(page, "success", "Deleted 2 disabled channel(s)")
        expect(batch).to_have_count(0)
        expect(renamed).to_have_count(1)

        # The background rounds start (their results show later).
        page.get_by_test_id("channel-test-all").click()
        toast(page, "success", "Testing every channel in the background")
        page.get_by_test_id("channel-balance-all").click()
        toast(page, "success", "Refreshing every enabled channel's balance")

        # Search by name.
        page.get_by_placeholder("Search channels by ID or name").fill("ui-fake")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("[data-testid=channels-table] tbody tr")).to_have_count(1)
        ui.shot("channels-search")

    # The same page on a phone: rows become cards, nothing wider than the screen.
    with open_ui(browser, suite.url, artifacts, viewport=PHONE) as phone:
        log_in_root(phone, suite)
        phone.click_nav("/channel", "phone-channels", ready="[data-testid=channels-table]")
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"


def test_users_page_creates_edits_promotes_and_deletes_a_user(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        log_in_root(ui, suite)
        ui.click_nav("/user", "users", ready="[data-testid=users-table]")

        page.get_by_test_id("user-add").click()
        form = page.locator("#user-form")
        form.locator("input[name=username]").fill("bob")
        form.locator("input[name=display_name]").fill("Bob B")
        form.locator("input[name=password]").fill("short")
        ui.shot("user-create")
        page.get_by_test_id("user-save").click()
        toast(page, "error", "8 to 20")
        form.locator("input[name=password]").fill("bob-pass-123")
        page.get_by_test_id("user-save").click()
        toast(page, "success", "Created user “bob”")
        bob = row(page, "users-table", "bob")
        expect(bob).to_have_count(1)
        expect(bob.get_by_test_id("user-role")).to_have_text("User")

        # Edit: group and quota (typed in dollars), and a new password that works.
        bob.get_by_test_id("user-edit").click()
        form.locator("select[name=group]").select_option("vip")
        form.locator("input[name=quota]").fill("10")
        expect(form).to_contain_text("= 5000000 quota")
        form.locator("input[name=password]").fill("bob-pass-456")
        ui.shot("user-edit")
        page.get_by_test_id("user-save").click()
        toast(page, "success", "Updated user “bob”")
        expect(bob).to_contain_text("vip")
        expect(bob).to_contain_text("$10.00")
        [stored] = ui.api("GET", "/api/user/search?keyword=bob")
        assert (stored["group"], stored["quota"]) == ("vip", 5_000_000)
        assert stored["display_name"] == "Bob B"
        with open_ui(browser, suite.url, artifacts) as bob_ui:
            bob_ui.log_in("bob", "bob-pass-456")
            bob_ui.click_nav("/setting", "bob-settings", ready="[data-testid=personal-username]")
            expect(bob_ui.page.get_by_test_id("personal-username")).to_have_text("bob")

        # Sorted by remaining quota: root (the most) first, then bob.
        page.get_by_test_id("user-order").select_option("quota")
        first_rows = page.locator("[data-testid=users-table] tbody tr")
        expect(first_rows.first).to_contain_text("root")
        expect(first_rows.nth(1)).to_contain_text("bob")
        ui.shot("users-by-quota")

        # Root promotes and demotes; disables and enables.
        bob.get_by_test_id("user-promote").click()
        toast(page, "success", "“bob” is now an admin")
        expect(bob.get_by_test_id("user-role")).to_have_text("Admin")
        bob.get_by_test_id("user-demote").click()
        expect(bob.get_by_test_id("user-role")).to_have_text("User")
        bob.get_by_test_id("user-disable").click()
        expect(bob.get_by_test_id("user-status")).to_have_text("Disabled")
        ui.shot("user-disabled")
        bob.get_by_test_id("user-enable").click()
        expect(bob.get_by_test_id("user-status")).to_have_text("Enabled")

        # Search, then delete after confirming.
        page.get_by_placeholder("Search by ID, username, display name or e-mail").fill("bo")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("[data-testid=users-table] tbody tr")).to_have_count(1)
        bob.get_by_test_id("user-delete").click()
        expect(page.get_by_role("dialog")).to_contain_text("Delete user “bob”?")
        ui.shot("user-delete-confirm")
        page.get_by_test_id("confirm-yes").click()
        toast(page, "success", "Deleted user “bob”")
        assert all(user["status"] == 3 for user in ui.api("GET", "/api/user/search?keyword=bob"))


def test_redemptions_page_creates_a_batch_and_copies_the_codes(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        log_in_root(ui, suite)
        ui.click_nav("/redemption", "redemptions")

        page.get_by_test_id("redemption-add").click()
        form = page.locator("#redemption-form")
        form.locator("input[name=name]").fill("ui-codes")
        form.locator("input[name=quota]").fill("2")
        form.locator("input[name=count]").fill("101")
        page.get_by_test_id("redemption-save").click()
        toast(page, "error", "The count must be 1 to 100")
        form.locator("input[name=count]").fill("3")
        ui.shot("redemption-create")
        page.get_by_test_id("redemption-save").click()
        toast(page, "success", "Created 3 code(s)")

        keys_box = page.get_by_test_id("redemption-keys")
        keys = keys_box.input_value().split("\n")
        assert len(keys) == 3, keys
        assert all(re.fullmatch(r"[A-Za-z0-9]{32}", key) for key in keys), keys
        ui.shot("redemption-keys")
        page.get_by_test_id("redemption-copy-all").click()
        assert ui.clipboard() == "\n".join(keys)
        page.get_by_test_id("redemption-done").click()

        codes = row(page, "redemptions-table", "ui-codes")
        expect(codes).to_have_count(3)
        expect(codes.first).to_contain_text("$2.00")
        expect(codes.get_by_test_id("redemption-status")).to_have_text(["Unused"] * 3)

        # Redeemed (by root, through the API): the row says so.
        credited = ui.api("POST", "/api/user/topup", {"key": keys[0]})
        assert credited == 1_000_000
        page.get_by_role("button", name="Refresh").click()
        used = codes.filter(has=status_badge(page, "redemption", 3))
        expect(used).to_have_count(1)
        expect(used.get_by_test_id("redemption-status")).to_have_text("Used")
        expect(used.get_by_test_id("redemption-disable")).to_have_count(0)

        # Disable, copy and delete the others.
        unused = codes.filter(has=status_badge(page, "redemption", 1))
        unused.first.get_by_test_id("redemption-disable").click()
        disabled = codes.filter(has=status_badge(page, "redemption", 2))
        expect(disabled).to_have_count(1)
        expect(disabled.get_by_test_id("redemption-status")).to_have_text("Disabled")
        disabled.get_by_test_id("redemption-copy").click()
        assert ui.clipboard() in keys[1:]
        ui.shot("redemption-disabled")
        disabled.get_by_test_id("redemption-delete").click()
        page.get_by_test_id("confirm-yes").click()
        toast(page, "success", "Deleted code “ui-codes”")
        expect(codes).to_have_count(2)

        # Search by name.
        page.get_by_placeholder("Search codes by ID or name").fill("ui-co")
        page.get_by_role("button", name="Search").click()
        expect(codes).to_have_count(2)
        ui.shot("redemptions-search")


def test_settings_pages_save_options_and_refuse_a_bad_ratio(
    suite: Suite, browser: Browser, artifacts: Path
) -> None:
    with open_ui(browser, suite.url, artifacts) as ui:
        page = ui.page
        log_in_root(ui, suite)

        # Operation: a number saved through the form, as one list.
        ui.click_nav("/setting", "settings-personal", ready="[data-testid=personal-username]")
        page.get_by_role("link", name="Operation").click()
        ui.settle("[data-testid=section-general]")
        ui.shot("settings-operation")
        general = page.get_by_test_id("section-general")
        general.locator("input[name=RetryTimes]").fill("2")
        general.locator("input[name=LogConsumeEnabled]").uncheck()
        page.get_by_test_id("save-general").click()
        toast(page, "success", "Saved 2 setting(s)")
        saved = options(ui)
        assert (saved["RetryTimes"], saved["LogConsumeEnabled"]) == ("2", "false")

        # A value out of bounds: the server's reason, nothing saved.
        general.locator("input[name=QuotaPerUnit]").fill("0")
        page.get_by_test_id("save-general").click()
        toast(page, "error", "QuotaPerUnit")
        assert options(ui)["QuotaPerUnit"] == "500000"
        general.locator("input[name=QuotaPerUnit]").fill("500000")

        # A ratio table that is not JSON is refused before sending...
        group_ratio = page.locator("textarea[name=GroupRatio]")
        group_ratio.fill('{"default": 1, "vip": ')
        expect(page.get_by_test_id("ratio-GroupRatio-error")).to_contain_text("Not valid JSON")
        dismiss_toasts(page)
        page.get_by_test_id("save-ratios").click()
        toast(page, "error", "Group ratio (GroupRatio) refused: Not valid JSON")
        ui.shot("settings-bad-ratio-json")
        # ...and one the server refuses shows its reason; nothing is saved.
        group_ratio.fill('{"default": -1}')
        page.get_by_test_id("save-ratios").click()
        toast(page, "error", "must be a non-negative number")
        ui.shot("settings-ratio-refused")
        assert '"svip"' in options(ui)["GroupRatio"]
        # A good table is saved, and becomes the groups channels and users pick from.
        group_ratio.fill('{"default": 1, "vip": 2, "team": 0.5}')
        page.get_by_test_id("save-ratios").click()
        toast(page, "success", "Saved 1 setting(s)")
        assert sorted(ui.api("GET", "/api/group/")) == ["default", "team", "vip"]

        # System: a switch without what it needs is refused with the server's reason.
        page.get_by_role("link", name="System").click()
        ui.settle("[data-testid=section-github]")
        ui.shot("settings-system")
        github = page.get_by_test_id("section-github")
        github.locator("input[name=GitHubOAuthEnabled]").check()
        page.get_by_test_id("save-github").click()
        toast(page, "error", "GitHub Client Id")
        github.locator("input[name=GitHubClientId]").fill("ui-client-id")
        github.locator("input[name=GitHubClientSecret]").fill("ui-client-secret")
        page.get_by_test_id("save-github").click()
        toast(page, "success", "Saved 3 setting(s)")
        saved = options(ui)
        assert (saved["GitHubOAuthEnabled"], saved["GitHubClientId"]) == ("true", "ui-client-id")
        assert "GitHubClientSecret" not in saved  # secrets are never sent back
        expect(github.locator("input[name=GitHubClientSecret]")).to_have_value("")
        assert ui.api("GET", "/api/status")["github_oauth"] is True

        # Other: the system name shows in the header at once.
        page.get_by_role("link", name="Other").click()
        ui.settle("[data-testid=section-site]")
        site = page.get_by_test_id("section-site")
        site.locator("input[name=SystemName]").fill("UI Gateway")
        page.get_by_test_id("section-notice").locator("textarea[name=Notice]").fill("**hi**")
        page.get_by_test_id("save-site").click()
        toast(page, "success", "Saved 1 setting(s)")
        expect(page.locator("header").get_by_text("UI Gateway")).to_be_visible()
        page.get_by_test_id("save-notice").click()
        wait_for(lambda: options(ui)["Notice"] == "**hi**", 10, "the notice to be saved")
        ui.shot("settings-other")

        # Personal: display name, access token (works for /api), invitation link.
        page.get_by_role("link", name="Personal").click()
        ui.settle("[data-testid=personal-username]")
        page.locator("input[name=display_name]").fill("Root Admin")
        page.get_by_test_id("personal-save-name").click()
        expect(page.get_by_test_id("current-user")).to_contain_text("Root Admin")
        page.get_by_test_id("personal-token").click()
        page.get_by_test_id("confirm-yes").click()
        token = page.get_by_test_id("personal-token-value").inner_text()
        assert re.fullmatch(r"[A-Za-z0-9]{32}", token), token
        # the token alone (a context without the session cookie) reads root's account
        bare = browser.new_context()
        try:
            answer = bare.request.get(
                ui.url("/api/user/self"), headers={"Authorization": f"Bearer {token}"}
            ).json()
        finally:
            bare.close()
        assert answer["success"] is True, answer
        assert answer["data"]["username"] == "root"
        page.get_by_test_id("personal-aff").click()
        expect(page.get_by_test_id("personal-aff-link")).to_contain_text(
            f"{suite.url}/register?aff="
        )
        expect(page.get_by_test_id("personal-bind-github")).to_be_visible()
        ui.shot("settings-personal")
