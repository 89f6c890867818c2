from __future__ import annotations

from pathlib import Path

import pytest

from libs.common.settings import DEFAULT_TEST_PROMPT, Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env from the work tree and none of the developer's variables leak in."""
    monkeypatch.chdir(tmp_path)
    for name in ("PORT", "SQL_DSN", "TARGET", "REDIS_CONN_STRING", "NATS_URL", "SYNC_FREQUENCY"):
        monkeypatch.delenv(name, raising=False)


def test_one_api_defaults() -> None:
    settings = load_settings()
    assert settings.port == 3000
    assert settings.sql_dsn == ""
    assert settings.sql_max_idle_conns == 100
    assert settings.sql_max_open_conns == 1000
    assert settings.sql_conn_max_lifetime == 60
    assert settings.sync_frequency == 600
    assert settings.batch_update_interval == 5
    assert settings.global_api_rate_limit == 180
    assert settings.global_web_rate_limit == 60
    assert settings.sqlite_busy_timeout == 3000
    assert settings.gemini_safety_setting == "BLOCK_NONE"
    assert settings.gemini_version == "v1"
    assert settings.metric_queue_size == 10
    assert settings.metric_success_rate_threshold == 0.8
    assert settings.channel_test_frequency is None
    assert settings.node_type == "master"
    assert settings.test_prompt == DEFAULT_TEST_PROMPT
    assert settings.target == ["all"]
    assert settings.sqlite_file == Path("data") / "one-api.db"


def test_environment_uses_one_api_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQL_DSN", "root:123456@tcp(localhost:3306)/oneapi")
    monkeypatch.setenv("SYNC_FREQUENCY", "60")
    monkeypatch.setenv("CHANNEL_TEST_FREQUENCY", "1440")
    monkeypatch.setenv("ENABLE_METRIC", "true")
    monkeypatch.setenv("TARGET", "relay, billing")
    settings = load_settings()
    assert settings.sql_dsn == "root:123456@tcp(localhost:3306)/oneapi"
    assert settings.sync_frequency == 60
    assert settings.channel_test_frequency == 1440
    assert settings.enable_metric is True
    assert settings.target == ["relay", "billing"]


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PORT=4000\nSYNC_FREQUENCY=30\n")
    monkeypatch.setenv("SYNC_FREQUENCY", "45")
    settings = load_settings()
    assert settings.port == 4000
    assert settings.sync_frequency == 45


def test_env_example_copied_to_dotenv_gives_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Operators start from `cp .env.example .env`; its empty lines mean "unset".
    example = Path(__file__).resolve().parents[3] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    assert load_settings() == Settings(_env_file=None)


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "4000")
    assert load_settings(port=5000).port == 5000


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "abc", "invalid setting PORT: input should be a valid integer"),
        ("PORT", "70000", "invalid setting PORT: input should be less than or equal to 65535"),
        ("NODE_TYPE", "primary", "invalid setting NODE_TYPE: input should be 'master' or 'slave'"),
        ("METRIC_SUCCESS_RATE_THRESHOLD", "2", "invalid setting METRIC_SUCCESS_RATE_THRESHOLD"),
        ("TARGET", ",", "invalid setting TARGET: value error, names no target"),
    ],
)
def test_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_values_of_secret_settings_are_not_echoed_in_errors() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(session_secret=["do-not-print"], sql_dsn={"password": "hunter2"})
    message = str(caught.value)
    assert "SESSION_SECRET" in message
    assert "SQL_DSN" in message
    assert "do-not-print" not in message
    assert "hunter2" not in message


def test_ordinary_values_are_echoed_to_help_fix_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQL_MAX_IDLE_CONNS", "ten")
    with pytest.raises(SettingsError, match="got 'ten'"):
        load_settings()
