"""Log lines: text or one JSON object per line, with the request id and trace ids; no secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.common.settings import Settings
from libs.common.telemetry import (
    REQUEST_ID,
    Redactor,
    bind_request_id,
    configure_logging,
    secrets_of,
)
from libs.common.tracing import start_tracing

SECRETS = {
    "sql_dsn": "postgres://oneapi:pg-Secret-1@db:5432/oneapi",
    "log_sql_dsn": "oneapi:go-Dsn-Secret@tcp(logs:3306)/logs",
    "redis_conn_string": "redis://default:redis-Secret-2@cache:6379/0",
    "nats_url": "nats://bus:nats-Secret-3@nats:4222",
    "session_secret": "session-Secret-4",
    "crypto_secret": "crypto-Secret-5",
    "initial_root_token": "root-token-Secret-6",
    "notify_webhook_secret": "webhook-Secret-7",
    "redis_password": "redis-Password-8",
}
LEAKS = [
    "pg-Secret-1",
    "go-Dsn-Secret",
    "redis-Secret-2",
    "nats-Secret-3",
    "session-Secret-4",
    "crypto-Secret-5",
    "root-token-Secret-6",
    "webhook-Secret-7",
    "redis-Password-8",
    "AbCdEfGhIjKlMnOpQrStUvWx",
    "eyJhbGciOiJIUzI1NiJ9.payload",
    "hunter2",
]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers: put the test runner's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(captured: str) -> list[dict[str, Any]]:
    out = []
    for line in captured.splitlines():
        parsed = json.loads(line)  # every line is one JSON object
        assert isinstance(parsed, dict)
        out.append(parsed)
    return out


def test_json_lines_carry_time_level_logger_message_and_request_id(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    log = logging.getLogger("services.relay.test")
    log.info("outside any request")
    with bind_request_id("20261128030405a1b2c3d4e5"):
        log.warning("inside %s", "a request", extra={"channel_id": 7})
    assert REQUEST_ID.get() is None
    first, second = lines(capsys.readouterr().err)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO"
    assert first["logger"] == "services.relay.test"
    assert first["message"] == "outside any request"
    assert first["time"].endswith("Z")
    assert second["message"] == "inside a request"
    assert second["level"] == "WARNING"
    assert second["request_id"] == "20261128030405a1b2c3d4e5"
    assert second["channel_id"] == 7


def test_request_ids_stay_with_their_own_tasks(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    log = logging.getLogger("services.billing.test")

    async def handle(request_id: str) -> None:
        REQUEST_ID.set(request_id)  # as the relay does, once per request task
        await asyncio.sleep(0.01)
        log.info("settled %s", request_id)

    async def main() -> None:
        await asyncio.gather(*(handle(f"r{i}") for i in range(5)))

    asyncio.run(main())
    for entry in lines(capsys.readouterr().err):
        assert entry["message"] == f"settled {entry['request_id']}"


def test_exceptions_are_a_field_and_lines_carry_trace_ids_in_a_span(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    tracing = start_tracing(service_name="t", version="1", exporter=InMemorySpanExporter())
    assert tracing.tracer is not None
    log = logging.getLogger("services.billing.test")
    try:
        with tracing.tracer.start_as_current_span("work") as span:
            try:
                raise ValueError("the database refused it")
            except ValueError:
                log.exception("settling failed")
    finally:
        tracing.shutdown()
    (entry,) = [e for e in lines(capsys.readouterr().err) if e["logger"] == log.name]
    assert entry["message"] == "settling failed"
    assert entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: the database refused it" in entry["exception"]
    context = span.get_span_context()
    assert entry["trace_id"] == f"{context.trace_id:032x}"
    assert entry["span_id"] == f"{context.span_id:016x}"


def test_text_is_the_default_format(
    root_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    configure_logging(Settings())
    logging.getLogger("oneapi").info("hello")
    err = capsys.readouterr().err
    assert err.rstrip().endswith("INFO oneapi: hello")
    assert not err.startswith("{")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_never_reach_a_log_line(
    log_format: str, root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format=log_format, **SECRETS))  # type: ignore[arg-type]
    log = logging.getLogger("libs.common.test")
    log.warning("connecting to %s", SECRETS["sql_dsn"])
    log.warning("logs at %s", SECRETS["log_sql_dsn"])
    log.warning("redis %s and nats %s", SECRETS["redis_conn_string"], SECRETS["nats_url"])
    log.warning("keys: %s %s", SECRETS["session_secret"], SECRETS["crypto_secret"])
    log.warning("root %s hook %s", SECRETS["initial_root_token"], SECRETS["notify_webhook_secret"])
    log.warning("password %s", SECRETS["redis_password"])
    log.warning("client sent sk-AbCdEfGhIjKlMnOpQrStUvWx")
    log.warning("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload")
    log.warning("upstream https://user:hunter2@example.com/v1", extra={"dsn": SECRETS["sql_dsn"]})
    try:
        raise ConnectionError(f"cannot reach {SECRETS['sql_dsn']}")
    except ConnectionError:
        log.exception("database down")
    err = capsys.readouterr().err
    for leak in LEAKS:
        assert leak not in err, leak
    assert "postgres://oneapi:***@db:5432/oneapi" in err
    assert "sk-***" in err
    assert "Bearer ***" in err
    if log_format == "json":
        assert len(lines(err)) == 10


def test_secrets_of_settings_and_redactor() -> None:
    found = secrets_of(Settings(**SECRETS))  # type: ignore[arg-type]
    for leak in LEAKS[:9]:
        assert leak in found
    assert secrets_of(Settings()) == []
    redact = Redactor(["abc"])  # too short to be a setting's secret, but given here
    assert redact("x abc y") == "x *** y"
    assert redact("model gpt-4o, 12 tokens") == "model gpt-4o, 12 tokens"


def test_log_format_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from libs.common.settings import SettingsError, load_settings

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings()
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert load_settings().log_format == "json"


def test_the_stream_is_stderr(root_logging: None) -> None:
    configure_logging(Settings(log_format="json"))
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
