"""Process logging: stderr always, plus a file in LOG_DIR when it is set (One API's --log-dir).

``LOG_FORMAT=text`` (the default) writes ``time LEVEL logger: message`` lines;
``LOG_FORMAT=json`` one JSON object per line::

    {"time": "2026-11-28T03:04:05.123Z", "level": "INFO", "logger": "services.relay",
     "message": "...", "request_id": "...", "trace_id": "...", "span_id": "...",
     "exception": "Traceback ..."}

``request_id`` comes from `REQUEST_ID`, a context variable the relay sets per request and
billing per message (`bind_request_id`); ``trace_id``/``span_id`` from the active
OpenTelemetry span, when tracing is on; ``exception`` is the formatted traceback. Fields
without a value are left out; what a call passes in ``extra=`` is added as is.

Secrets never reach a log line, in either format: the values of the secret settings (keys,
passwords, the passwords inside DSNs and URLs), credentials in any URL, bearer tokens and
``sk-`` keys are replaced by ``***`` in messages, extras and tracebacks.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson

from libs.common.settings import Settings
from libs.common.tracing import current_ids

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK: Final = "***"

REQUEST_ID: ContextVar[str | None] = ContextVar("oneapi_request_id", default=None)
"""The request (relay) or usage message (billing) being handled; logged as ``request_id``."""


@contextlib.contextmanager
def bind_request_id(request_id: str | None) -> Iterator[None]:
    """Log `request_id` with every line written inside the block."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


# --- redaction ----------------------------------------------------------------------------

_SECRET_FIELDS: Final = (
    "session_secret",
    "crypto_secret",
    "redis_password",
    "initial_root_token",
    "initial_root_access_token",
    "notify_webhook_secret",
)
_URL_FIELDS: Final = (
    "sql_dsn",
    "log_sql_dsn",
    "redis_conn_string",
    "nats_url",
    "relay_proxy",
    "user_content_request_proxy",
    "notify_webhook_url",
)
_GO_DSN_PASSWORD: Final = re.compile(r"^[^:@/]*:(?P<password>[^@]*)@")
_PATTERNS: Final = (
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\g<keep>{MASK}@"),
    # Authorization: Bearer <token>
    (re.compile(r"(?i)(?P<keep>\bbearer\s+)[^\s\"',;]+"), rf"\g<keep>{MASK}"),
    # API keys: sk-<key> (One API's tokens, OpenAI's keys)
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), f"sk-{MASK}"),
)
_MIN_SECRET_CHARS: Final = 4


def secrets_of(settings: Settings) -> list[str]:
    """Values a log line must never show: secret settings and the passwords in DSNs/URLs."""
    found: set[str] = set()
    for name in _SECRET_FIELDS:
        value = str(getattr(settings, name, "") or "")
        if value:
            found.add(value)
    for name in _URL_FIELDS:
        for part in str(getattr(settings, name, "") or "").split(","):
            found.update(_passwords_in(part.strip()))
    return sorted((s for s in found if len(s) >= _MIN_SECRET_CHARS), key=len, reverse=True)


def _passwords_in(value: str) -> Iterable[str]:
    if not value:
        return []
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return []
        return [password, unquote(password)] if password else []
    match = _GO_DSN_PASSWORD.match(value)  # One API's user:password@tcp(host)/db
    return [match["password"]] if match and match["password"] else []


class Redactor:
    """Replaces secrets in text: the given values, URL credentials, bearer tokens, keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


# --- formatters ---------------------------------------------------------------------------

# Attributes every LogRecord has; anything else came from `extra=`.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "trace_id", "span_id"}
)


class ContextFilter(logging.Filter):
    """Stamps each record with the request id and trace ids of the code that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        ids = current_ids()
        record.trace_id, record.span_id = ids if ids is not None else (None, None)
        return True


class TextFormatter(logging.Formatter):
    """The classic line, redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module doc)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redact
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for field in ("request_id", "trace_id", "span_id"):
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        return orjson.dumps(entry, default=lambda value: redact(str(value))).decode()


def _iso_time(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_formatter(settings: Settings) -> logging.Formatter:
    redact = Redactor(secrets_of(settings))
    if settings.log_format == "json":
        return JsonFormatter(redact)
    return TextFormatter(redact)


def configure_logging(settings: Settings) -> None:
    """Set up the root logger once per process; library loggers propagate to it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        path = settings.log_dir / f"oneapi-{time.strftime('%Y%m%d%H%M%S')}.log"
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    formatter = build_formatter(settings)
    context = ContextFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(context)
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        handlers=handlers,
        force=True,
    )
    # Their INFO lines are per-connection noise; warnings still show.
    for noisy in ("uvicorn.error", "nats", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.debug_sql:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
