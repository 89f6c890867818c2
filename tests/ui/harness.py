"""Driving the built web UI in Debian's Chromium with Playwright (Python, sync API).

`Ui` wraps one browser context and page:

- every request to anything but 127.0.0.1 is aborted and recorded (`ui.external`): the built
  UI must load nothing from outside the machine, and every test asserts none was attempted;
- every uncaught JavaScript error, error logged to the console (but failed resources: a 401
  before login is expected) or page that failed to render is recorded (`ui.page_errors`) and
  fails the test;
- `ui.visit(path)`, `ui.click_nav(path)` and `ui.shot(name)` save a screenshot of each page
  visited under the test's artifacts folder: `$ONEAPI_UI_ARTIFACTS/<test>/` when set (CI),
  else `tests/ui/artifacts/<test>/` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

from tests.harness.services import services_required

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "services" / "admin" / "web" / "dist"
DEFAULT_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LOCAL_HOSTS = frozenset({"127.0.0.1"})
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def unavailable(message: str) -> None:
    """Skip, or fail when ONEAPI_TEST_REQUIRE_SERVICES=1 (CI must never pass by skipping)."""
    if services_required():
        pytest.fail(f"{message}; ONEAPI_TEST_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def chromium_path() -> str:
    explicit = os.environ.get("ONEAPI_TEST_CHROMIUM", "")
    for candidate in (explicit, *CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    unavailable(
        "Chromium not found (apt-get install -y --no-install-recommends chromium, "
        "or set ONEAPI_TEST_CHROMIUM)"
    )
    raise AssertionError("unreachable")


def artifacts_root() -> Path:
    configured = os.environ.get("ONEAPI_UI_ARTIFACTS", "")
    return Path(configured) if configured else DEFAULT_ARTIFACTS


def artifacts_for(test_name: str) -> Path:
    folder = artifacts_root() / re.sub(r"[^\w.-]+", "_", test_name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Ui:
    """One browser context and page on the suite at `base_url`."""

    def __init__(self, context: BrowserContext, base_url: str, artifacts: Path) -> None:
        self.context = context
        self.base_url = base_url
        self.artifacts = artifacts
        self.external: list[str] = []
        self.page_errors: list[str] = []
        self.shots: list[Path] = []
        context.route("**/*", self._only_local)
        self.page: Page = context.new_page()
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # An answer with an error status (401 before login, 404) is logged as a failed
        # resource: expected. Anything else logged as an error is a bug in the page.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.page_errors.append(message.text)

    def _only_local(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    # --- navigation and screenshots ----------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def shot(self, name: str) -> Path:
        slug = re.sub(r"[^\w.-]+", "_", name)
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def visit(self, path: str, name: str | None = None, *, ready: str | None = None) -> Page:
        """Load `path` (a full page load), wait for `ready` (a selector) and screenshot it."""
        self.page.goto(self.url(path))
        self.settle(ready)
        self.shot(name or path)
        return self.page

    def click_nav(self, path: str, name: str | None = None, *, ready: str | None = None) -> None:
        """Follow the navigation entry of `path` (in the app, no reload) and screenshot it."""
        link = self.page.locator(f'[data-nav="{path}"]')
        link.wait_for(state="attached")
        burger = self.page.get_by_test_id("menu-toggle")
        if burger.is_visible():  # a phone: the navigation is a drawer
            burger.click()
            expect(link).to_be_in_viewport()
        link.click()
        self.page.wait_for_url(re.compile(re.escape(path) + r"([/?#].*)?$"))
        self.settle(ready)
        self.shot(name or path)

    def settle(self, ready: str | None = None) -> None:
        if ready:
            self.page.locator(ready).first.wait_for(state="visible")
        # Pages load lazily and fetch on entry: wait until no spinner is left.
        expect(self.page.locator(".spinner-block")).to_have_count(0)
        expect(self.page.get_by_test_id("page-error")).to_have_count(0)

    # --- the API, as this browser (its session cookie) ---------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call `/api` with this context's cookies; returns `data`, fails on `success: false`."""
        response = self.context.request.fetch(
            self.url(path),
            method=method,
            data=body,
            headers={"Origin": self.base_url},
        )
        payload: dict[str, Any] = response.json()
        assert payload.get("success") is True, f"{method} {path}: {payload}"
        return payload.get("data")

    def api_answer(self, method: str, path: str) -> dict[str, Any]:
        """The whole answer, whatever it says."""
        response = self.context.request.fetch(self.url(path), method=method)
        answer: dict[str, Any] = response.json()
        return answer

    # --- common steps ------------------------------------------------------------------------
    def log_in(self, username: str, password: str) -> None:
        self.visit("/login", "login", ready="input[name=username]")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.get_by_test_id("login-submit").click()
        self.page.get_by_test_id("current-user").wait_for(state="attached")
        self.settle()

    def clipboard(self) -> str:
        text: str = self.page.evaluate("navigator.clipboard.readText()")
        return text

    def check_clean(self) -> None:
        assert not self.external, f"the UI tried to load from outside: {self.external}"
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"


@contextlib.contextmanager
def open_ui(
    browser: Browser,
    base_url: str,
    artifacts: Path,
    *,
    locale: str = "en-US",
    viewport: dict[str, int] | None = None,
) -> Iterator[Ui]:
    context = browser.new_context(
        base_url=base_url,
        locale=locale,
        viewport=viewport or DESKTOP,  # type: ignore[arg-type]
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(15_000)
    ui = Ui(context, base_url, artifacts)
    try:
        yield ui
    except BaseException:
        with contextlib.suppress(Exception):  # the failure itself is what matters
            ui.shot("failure")
        raise
    finally:
        context.close()
    ui.check_clean()
