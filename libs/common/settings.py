"""Process settings, read from the environment and `.env`.

Every variable of One API keeps its name, default and meaning; the variables this project adds
(`NATS_URL`, `NATS_NAMESPACE`, `TARGET`, `DATA_DIR`, ...) are documented in `.env.example`.
Settings are built once per process by `load_settings()` and passed down; nothing reads the
environment at import time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TEST_PROMPT = "Print your model name exactly and do not output without any other text."


class SettingsError(Exception):
    """A setting has an invalid value; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Every knob of a oneapi process. Field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        # `CHANNEL_TEST_FREQUENCY=` means unset, as in One API (and as `.env.example` says).
        env_ignore_empty=True,
    )

    # --- process -------------------------------------------------------------------------
    port: int = Field(
        3000, ge=0, le=65535, description="HTTP port (flag --port); 0 picks a free one"
    )
    host: str = Field("0.0.0.0", description="address the HTTP server binds")  # noqa: S104
    log_dir: Path | None = Field(None, description="log folder (flag --log-dir); unset: stderr")
    data_dir: Path = Field(Path("data"), description="SQLite file and embedded NATS store")
    target: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["all"],
        description="targets this process runs, comma-separated (flag --target)",
    )
    debug: bool = False
    debug_sql: bool = False
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as text, or one JSON object per line (json)"
    )
    shutdown_grace_seconds: int = Field(
        30, ge=0, description="how long in-flight requests may finish after SIGTERM"
    )

    # --- database ------------------------------------------------------------------------
    sql_dsn: str = ""
    log_sql_dsn: str = ""
    sqlite_path: str = "one-api.db"
    sql_max_idle_conns: int = Field(100, ge=0)
    sql_max_open_conns: int = Field(1000, ge=1)
    sql_conn_max_lifetime: int = Field(60, ge=0, description="minutes")
    sqlite_busy_timeout: int = Field(3000, ge=0, description="milliseconds")
    database_wait_seconds: int = Field(
        60, ge=0, description="how long a starting process waits for the database to answer"
    )
    schema_wait_seconds: int = Field(
        120, ge=0, description="how long non-admin targets wait for the admin's migrations"
    )

    # --- bus and cache -------------------------------------------------------------------
    nats_url: str = Field("", description="NATS with JetStream; unset: embedded nats-server")
    nats_namespace: str = Field(
        "", pattern=r"^[A-Za-z0-9_-]*$", description="prefix of every subject and stream"
    )
    redis_conn_string: str = ""
    redis_password: str = ""
    redis_master_name: str = ""
    memory_cache_enabled: bool = False
    sync_frequency: int = Field(600, ge=1, description="seconds between full config resyncs")

    # --- multi-node ----------------------------------------------------------------------
    session_secret: str = ""
    crypto_secret: str = Field(
        "", description="encrypts channel keys at rest; unset: stored as given (One API)"
    )
    node_type: Literal["master", "slave"] = "master"
    frontend_base_url: str = ""

    # --- billing -------------------------------------------------------------------------
    batch_update_enabled: bool = False
    batch_update_interval: int = Field(5, ge=1, description="seconds")

    # --- health --------------------------------------------------------------------------
    channel_update_frequency: int | None = Field(None, ge=1, description="minutes")
    channel_test_frequency: int | None = Field(None, ge=1, description="minutes")
    polling_interval: int = Field(0, ge=0, description="seconds between channels")
    enable_metric: bool = False
    metric_queue_size: int = Field(10, ge=1)
    metric_success_rate_threshold: float = Field(0.8, ge=0, le=1)
    test_prompt: str = DEFAULT_TEST_PROMPT
    channel_test_period_seconds: float | None = Field(
        None, gt=0, description="seconds between channel tests; overrides CHANNEL_TEST_FREQUENCY"
    )
    channel_update_period_seconds: float | None = Field(
        None, gt=0, description="seconds between balance refreshes; overrides the minutes"
    )
    channel_test_concurrency: int = Field(4, ge=1, description="channels tested at once")
    health_lease_seconds: int = Field(
        15, ge=1, description="how long a health replica holds the schedule without renewing"
    )
    notify_webhook_url: str = Field(
        "", description="POST a JSON notice here on every automatic channel disable and enable"
    )
    notify_webhook_secret: str = Field(
        "", description="HMAC-SHA256 key signing the webhook's body (X-Oneapi-Signature)"
    )

    # --- admin ---------------------------------------------------------------------------
    global_api_rate_limit: int = Field(180, ge=0, description="per IP per 3 minutes")
    global_web_rate_limit: int = Field(60, ge=0, description="per IP per 3 minutes")
    initial_root_token: str = ""
    initial_root_access_token: str = ""
    theme: str = "default"

    # --- relay ---------------------------------------------------------------------------
    relay_timeout: int = Field(0, ge=0, description="seconds; 0 means none")
    relay_proxy: str = ""
    user_content_request_timeout: int = Field(30, ge=0, description="seconds")
    user_content_request_proxy: str = ""
    tiktoken_cache_dir: str = ""
    data_gym_cache_dir: str = ""
    gemini_safety_setting: str = "BLOCK_NONE"
    gemini_version: str = "v1"
    enforce_include_usage: bool = False
    relay_max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest request body; larger ones get 413"
    )
    relay_max_concurrency: int = Field(
        0, ge=0, description="concurrent upstream requests per relay process; 0: unbounded"
    )
    relay_token_rpm: int = Field(0, ge=0, description="requests per minute per token; 0: off")
    relay_user_rpm: int = Field(0, ge=0, description="requests per minute per user; 0: off")
    relay_channel_cooldown: int = Field(
        10, ge=0, description="seconds a channel that just failed is avoided by this relay"
    )
    relay_usage_confirm_seconds: float = Field(
        2.0,
        ge=0,
        description="how long a response's end waits for JetStream to store its usage; 0: none",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="proxies (CIDRs) whose X-Forwarded-For names the client",
    )

    @field_validator("target", mode="before")
    @classmethod
    def _split_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    @field_validator("target")
    @classmethod
    def _targets_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no target")
        return value

    @property
    def channel_test_period(self) -> float | None:
        """Seconds between scheduled channel tests; None: no scheduled tests."""
        if self.channel_test_period_seconds is not None:
            return self.channel_test_period_seconds
        if self.channel_test_frequency is not None:
            return self.channel_test_frequency * 60.0
        return None

    @property
    def channel_update_period(self) -> float | None:
        """Seconds between scheduled balance refreshes; None: no scheduled refreshes."""
        if self.channel_update_period_seconds is not None:
            return self.channel_update_period_seconds
        if self.channel_update_frequency is not None:
            return self.channel_update_frequency * 60.0
        return None

    @property
    def sqlite_file(self) -> Path:
        """The embedded database file, relative paths taken inside the data directory."""
        path = Path(self.sqlite_path)
        return path if path.is_absolute() else self.data_dir / path


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, `.env` and explicit overrides (CLI flags).

    Raises SettingsError with one line per invalid variable, named as in the environment.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


_SENSITIVE = ("secret", "password", "token", "dsn", "conn_string", "url", "proxy")


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "settings"
        given = error.get("input")
        sensitive = any(part in field for part in _SENSITIVE)
        shown = "" if sensitive or isinstance(given, dict) else f" (got {given!r})"
        name = field.upper()
        lines.append(f"invalid setting {name}: {error['msg'].lower()}{shown}")
    return "\n".join(lines)
