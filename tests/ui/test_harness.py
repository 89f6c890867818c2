"""The browser tests' own rules: without Chromium they skip, or fail where CI requires them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui import harness


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.delenv("ONEAPI_TEST_CHROMIUM", raising=False)


@pytest.mark.usefixtures("no_chromium")
def test_missing_chromium_fails_when_services_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEAPI_TEST_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        harness.chromium_path()


@pytest.mark.usefixtures("no_chromium")
def test_missing_chromium_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEAPI_TEST_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium not found"):
        harness.chromium_path()


def test_an_explicit_chromium_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ONEAPI_TEST_CHROMIUM", str(fake))
    assert harness.chromium_path() == str(fake)
