"""`.env.example` documents every setting, with its real default."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.common.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def documented() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        line = line.removeprefix("# ")
        if "=" in line and line.split("=", 1)[0].isupper():
            name, value = line.split("=", 1)
            values.setdefault(name, value)
    return values


def test_every_setting_is_documented() -> None:
    missing = sorted(
        name.upper() for name in Settings.model_fields if name.upper() not in documented()
    )
    assert missing == []


# Paths are documented as paths ("./data"), which Settings holds as Path("data").
PATHS = {"data_dir", "log_dir"}


@pytest.mark.parametrize("name", sorted(set(Settings.model_fields) - PATHS))
def test_documented_default_is_the_real_default(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(name.upper(), raising=False)
    value = documented()[name.upper()]
    default = Settings().model_dump()[name]
    if isinstance(default, list):
        default = ",".join(default)
    if default is None:
        default = ""
    if isinstance(default, bool):
        default = str(default).lower()
    assert str(default) == value
