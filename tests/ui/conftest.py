"""Fixtures of the browser tests: the built UI, Chromium, a fake upstream and a real `oneapi run`.

The suite (`oneapi run`, target all: SQLite and embedded NATS in a temporary folder) is started
once per test module; each test opens its own browser context (cookies, storage) on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.runner import FakeUpstream
from tests.harness.process import OneapiProcess
from tests.ui.harness import DIST, artifacts_for, chromium_path, unavailable

UPSTREAM_KEY = "sk-upstream-ui"


@dataclass
class Suite:
    """The running suite, and what the tests of a module share about it."""

    oneapi: OneapiProcess
    upstream: FakeUpstream
    root_password: str = "123456"
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.oneapi.url


WEB = DIST.parent
WEB_SOURCES = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts")


def newest_source() -> tuple[float, Path]:
    newest = (0.0, WEB)
    for name in WEB_SOURCES:
        root = WEB / name
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if path.is_file():
                newest = max(newest, (path.stat().st_mtime, path))
    return newest


@pytest.fixture(scope="session")
def built_ui() -> Path:
    """The build under test: it must exist and be newer than every source (`make ui`)."""
    index = DIST / "index.html"
    if not index.is_file():
        pytest.fail(f"the web UI is not built ({DIST} missing): run `make ui`", pytrace=False)
    changed, source = newest_source()
    if changed > index.stat().st_mtime:
        pytest.fail(f"the web UI build is older than {source}: run `make ui`", pytrace=False)
    return DIST


# Module scope, not session: sync Playwright runs an event loop in this thread while it is
# started, and the async tests a worker runs after these must find none.
@pytest.fixture(scope="module")
def browser(built_ui: Path) -> Iterator[object]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (a dev dependency)")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=executable, headless=True)
    except Exception as exc:
        manager.stop()
        unavailable(f"Chromium at {executable} does not start: {exc}")
        raise
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, built_ui: Path) -> Iterator[Suite]:
    data_dir = tmp_path_factory.mktemp("ui-suite")
    with FakeUpstream("openai", keys=[UPSTREAM_KEY]) as upstream:
        env = {
            # One browser runs many tests from one address within minutes: the per-address
            # limits are covered by their own tests, not here.
            "GLOBAL_API_RATE_LIMIT": "0",
            "GLOBAL_WEB_RATE_LIMIT": "0",
            "SESSION_SECRET": "ui-tests-session-secret",
        }
        with OneapiProcess(["run"], data_dir=data_dir, env=env) as oneapi:
            oneapi.wait_ready()
            yield Suite(oneapi=oneapi, upstream=upstream)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    return artifacts_for(request.node.name)
