from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oneapi import __version__
from oneapi.cli import build_parser, main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("PORT", "TARGET", "SQL_DSN"):
        monkeypatch.delenv(name, raising=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == __version__


def test_help_lists_one_api_flags_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for expected in ("--port", "--log-dir", "--version", "run", "list-targets", "migrate"):
        assert expected in text


def test_list_targets_shows_each_target_and_its_start_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list-targets"]) == 0
    text = capsys.readouterr().out
    for target in ("admin", "relay", "billing", "health", "all"):
        assert target in text
    assert "database -> schema -> bus -> cache -> relay" in text
    assert "database -> schema -> bus -> billing" in text


def test_invalid_setting_stops_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SQL_MAX_OPEN_CONNS", "many")
    assert main([]) == 2
    error = capsys.readouterr().err
    assert error.strip() == (
        "oneapi: invalid setting SQL_MAX_OPEN_CONNS: input should be a valid integer, "
        "unable to parse string as an integer (got 'many')"
    )


def test_unknown_target_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", "--target", "relay,biling", "--data-dir", str(tmp_path / "d")]) == 2
    assert "unknown target 'biling'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "oneapi"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_migrate_up_and_down_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["migrate", "--data-dir", str(data)]) == 0
    import sqlite3

    def tables() -> set[str]:
        with sqlite3.connect(data / "one-api.db") as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {name for (name,) in rows}

    assert {
        "users",
        "tokens",
        "channels",
        "abilities",
        "logs",
        "options",
        "redemptions",
    } <= tables()
    assert main(["migrate", "--data-dir", str(data), "--downgrade", "base"]) == 0
    assert tables() <= {"alembic_version", "alembic_version_logs"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--target", "relay", "--port", "4000"],
        ["run", "--target", "relay", "--port", "4000"],
        ["--port", "4000", "run", "--target", "relay"],
        ["--target", "relay", "run", "--port", "4000"],
    ],
)
def test_target_and_port_count_before_or_after_run(argv: list[str]) -> None:
    # `docker run IMAGE --target relay` passes the flags without `run`.
    args = build_parser().parse_args(argv)
    assert args.target == "relay"
    assert args.port == 4000
