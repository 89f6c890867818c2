"""One API's tables, as SQLAlchemy 2 typed models.

Two declarative bases because `LOG_SQL_DSN` can put `logs` in another database: `Base` holds
every other table (migration environment "main"), `LogBase` holds `logs` and its daily sums,
`log_daily_usage` (environment "logs").

Column choices that differ from a literal copy of One API's GORM tags, and why:

* Every quota, used_quota and timestamp is BIGINT (root's quota 500000000000000 exceeds INT).
* Credentials (`tokens.key`, `users.access_token`, `redemptions.key`) are VARCHAR, not CHAR:
  PostgreSQL pads CHAR(n) with spaces on read, which would corrupt any key shorter than n
  (an `INITIAL_ROOT_TOKEN` for instance). On MySQL/MariaDB they use the binary collation so a
  key matches case-sensitively, as it does on PostgreSQL and SQLite.
* Unset optional credentials are NULL (`users.access_token`, `users.aff_code`): unique indexes
  ignore NULLs on every backend, while One API's empty strings collide on MySQL.
* Indexed VARCHARs stay within 191 characters (767-byte index prefixes with utf8mb4).
* Non-TEXT columns with a default also have a server default (so raw SQL and future
  `ADD COLUMN ... NOT NULL` work); TEXT columns have Python-side defaults only, because MySQL
  before 8.0.13 refuses TEXT defaults. Python-side defaults are set on every column too, so the
  ORM knows the values after a flush without a round trip.

Status and role columns are plain integers; the `IntEnum`s below name their values.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column
from sqlalchemy.types import TypeEngine

__all__ = [
    "ACCESS_TOKEN_LENGTH",
    "DEFAULT_GROUP",
    "NEVER_EXPIRES",
    "REDEMPTION_KEY_LENGTH",
    "ROOT_QUOTA",
    "TOKEN_KEY_LENGTH",
    "Ability",
    "Base",
    "Channel",
    "ChannelStatus",
    "Log",
    "LogBase",
    "LogDailyUsage",
    "LogType",
    "Option",
    "Redemption",
    "RedemptionStatus",
    "SettledRequest",
    "Token",
    "TokenStatus",
    "User",
    "UserRole",
    "UserStatus",
]

DEFAULT_GROUP: Final = "default"
ROOT_QUOTA: Final = 500_000_000_000_000
NEVER_EXPIRES: Final = -1
TOKEN_KEY_LENGTH: Final = 48
ACCESS_TOKEN_LENGTH: Final = 32
REDEMPTION_KEY_LENGTH: Final = 32


class UserRole(IntEnum):
    COMMON = 1
    ADMIN = 10
    ROOT = 100


class UserStatus(IntEnum):
    ENABLED = 1
    DISABLED = 2
    DELETED = 3


class TokenStatus(IntEnum):
    ENABLED = 1
    DISABLED = 2
    EXPIRED = 3
    EXHAUSTED = 4


class ChannelStatus(IntEnum):
    ENABLED = 1
    MANUALLY_DISABLED = 2
    AUTO_DISABLED = 3


class LogType(IntEnum):
    TOPUP = 1
    CONSUME = 2
    MANAGE = 3
    SYSTEM = 4
    TEST = 5


class RedemptionStatus(IntEnum):
    ENABLED = 1
    DISABLED = 2
    USED = 3


# Deterministic constraint names on every backend, so migrations can name what they drop.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# MySQL/MariaDB table options: InnoDB, and utf8mb4 whatever the database's default charset.
MYSQL_TABLE_OPTIONS: Final = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def credential(length: int) -> TypeEngine[str]:
    """VARCHAR(length), compared case-sensitively on MySQL/MariaDB too."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


# BIGINT ids for the one table that grows without bound; SQLite autoincrements INTEGER only.
LOG_ID_TYPE: Final[TypeEngine[int]] = BigInteger().with_variant(Integer(), "sqlite")


def _int(default: int, **kw: Any) -> MappedColumn[Any]:
    return mapped_column(Integer, default=int(default), server_default=str(int(default)), **kw)


def _bigint(default: int, **kw: Any) -> MappedColumn[Any]:
    return mapped_column(BigInteger, default=int(default), server_default=str(int(default)), **kw)


def _bool(default: bool, **kw: Any) -> MappedColumn[Any]:
    return mapped_column(Boolean, default=default, server_default="1" if default else "0", **kw)


def _str(length: int, default: str = "", **kw: Any) -> MappedColumn[Any]:
    return mapped_column(String(length), default=default, server_default=default, **kw)


class Base(DeclarativeBase):
    """Every table of the main database (`SQL_DSN`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LogBase(DeclarativeBase):
    """The `logs` table and its daily sums, which `LOG_SQL_DSN` can move to a database of
    their own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_username", "username", unique=True),
        Index("uq_users_access_token", "access_token", unique=True),
        Index("uq_users_aff_code", "aff_code", unique=True),
        Index("ix_users_email", "email"),
        Index("ix_users_github_id", "github_id"),
        Index("ix_users_wechat_id", "wechat_id"),
        Index("ix_users_lark_id", "lark_id"),
        Index("ix_users_oidc_id", "oidc_id"),
        Index("ix_users_inviter_id", "inviter_id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # One API limits usernames to 12 characters; deleted users are renamed "deleted_<uuid>".
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password: Mapped[str] = mapped_column(String(255), nullable=False)  # bcrypt, "$2a$10$..."
    display_name: Mapped[str] = _str(64, nullable=False)
    role: Mapped[int] = _int(UserRole.COMMON, nullable=False)
    status: Mapped[int] = _int(UserStatus.ENABLED, nullable=False)
    email: Mapped[str] = _str(191, nullable=False)
    github_id: Mapped[str] = _str(191, nullable=False)
    wechat_id: Mapped[str] = _str(191, nullable=False)
    lark_id: Mapped[str] = _str(191, nullable=False)
    oidc_id: Mapped[str] = _str(191, nullable=False)
    access_token: Mapped[str | None] = mapped_column(credential(ACCESS_TOKEN_LENGTH), nullable=True)
    quota: Mapped[int] = _bigint(0, nullable=False)
    used_quota: Mapped[int] = _bigint(0, nullable=False)
    request_count: Mapped[int] = _int(0, nullable=False)
    group: Mapped[str] = _str(64, DEFAULT_GROUP, nullable=False)
    aff_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    inviter_id: Mapped[int] = _int(0, nullable=False)


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (
        Index("uq_tokens_key", "key", unique=True),
        Index("ix_tokens_user_id", "user_id"),
        Index("ix_tokens_name", "name"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = _int(0, nullable=False)
    # Shown to users as "sk-" + key.
    key: Mapped[str] = mapped_column(credential(TOKEN_KEY_LENGTH), nullable=False)
    status: Mapped[int] = _int(TokenStatus.ENABLED, nullable=False)
    name: Mapped[str] = _str(128, nullable=False)
    created_time: Mapped[int] = _bigint(0, nullable=False)
    accessed_time: Mapped[int] = _bigint(0, nullable=False)
    expired_time: Mapped[int] = _bigint(NEVER_EXPIRES, nullable=False)
    remain_quota: Mapped[int] = _bigint(0, nullable=False)
    unlimited_quota: Mapped[bool] = _bool(False, nullable=False)
    used_quota: Mapped[int] = _bigint(0, nullable=False)
    models: Mapped[str | None] = mapped_column(Text, nullable=True)  # NULL/"": every model
    subnet: Mapped[str | None] = mapped_column(Text, nullable=True)  # NULL/"": any address


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (Index("ix_channels_name", "name"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[int] = _int(0, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[int] = _int(ChannelStatus.ENABLED, nullable=False)
    name: Mapped[str] = _str(128, nullable=False)
    weight: Mapped[int] = _int(0, nullable=False)
    created_time: Mapped[int] = _bigint(0, nullable=False)
    test_time: Mapped[int] = _bigint(0, nullable=False)
    response_time: Mapped[int] = _int(0, nullable=False)  # milliseconds
    base_url: Mapped[str] = _str(512, nullable=False)
    other: Mapped[str | None] = mapped_column(Text, nullable=True)  # deprecated, see config
    balance: Mapped[float] = mapped_column(Double, nullable=False, default=0.0, server_default="0")
    balance_updated_time: Mapped[int] = _bigint(0, nullable=False)
    models: Mapped[str] = mapped_column(Text, nullable=False, default="")  # comma list
    group: Mapped[str] = _str(255, DEFAULT_GROUP, nullable=False)  # comma list
    used_quota: Mapped[int] = _bigint(0, nullable=False)
    model_mapping: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {"from": "to"}
    priority: Mapped[int] = _bigint(0, nullable=False)
    config: Mapped[str] = mapped_column(Text, nullable=False, default="")  # JSON object
    system_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)


class Ability(Base):
    """One row per (group, model, channel): what the relay selects channels from."""

    __tablename__ = "abilities"
    __table_args__ = (
        Index("ix_abilities_group_model_enabled", "group", "model", "enabled"),
        Index("ix_abilities_channel_id", "channel_id"),
        MYSQL_TABLE_OPTIONS,
    )

    group: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(191), primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    enabled: Mapped[bool] = _bool(True, nullable=False)
    priority: Mapped[int] = _bigint(0, nullable=False)


class Option(Base):
    __tablename__ = "options"
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False, default="")


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("uq_redemptions_key", "key", unique=True),
        Index("ix_redemptions_name", "name"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = _int(0, nullable=False)
    key: Mapped[str] = mapped_column(credential(REDEMPTION_KEY_LENGTH), nullable=False)
    status: Mapped[int] = _int(RedemptionStatus.ENABLED, nullable=False)
    name: Mapped[str] = _str(128, nullable=False)
    quota: Mapped[int] = _bigint(100, nullable=False)
    created_time: Mapped[int] = _bigint(0, nullable=False)
    redeemed_time: Mapped[int] = _bigint(0, nullable=False)


class SettledRequest(Base):
    """A usage request billing has charged: the idempotency key of the charge.

    Billing inserts the row in the transaction that charges the request, so a request id
    present here was charged exactly once, whatever is redelivered. `log_pending` is true while
    the request's consume log, owed to a logs database of its own (`LOG_SQL_DSN`), is not known
    to be written. `settled_at` (Unix seconds) lets old rows be pruned.
    """

    __tablename__ = "settled_requests"
    __table_args__ = (
        Index("ix_settled_requests_settled_at", "settled_at"),
        MYSQL_TABLE_OPTIONS,
    )

    # Case-sensitive on MySQL/MariaDB too: two ids differing in case are two requests.
    request_id: Mapped[str] = mapped_column(credential(64), primary_key=True)
    settled_at: Mapped[int] = _bigint(0, nullable=False)
    log_pending: Mapped[bool] = _bool(False, nullable=False)


class Log(LogBase):
    """One row per top-up, consumption, management action, system event or channel test.

    Beyond One API: `token_id`, `cached_tokens`, `reasoning_tokens`, and `ratios` (the JSON the
    billing service writes: the model, completion and group ratios the quota was computed with).
    """

    __tablename__ = "logs"
    __table_args__ = (
        Index("ix_logs_created_at_type", "created_at", "type"),
        Index("ix_logs_user_id_created_at", "user_id", "created_at"),
        Index("ix_logs_username", "username"),
        Index("ix_logs_token_name", "token_name"),
        Index("ix_logs_model_name", "model_name"),
        Index("ix_logs_channel_id", "channel_id"),
        Index("ix_logs_request_id", "request_id"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(LOG_ID_TYPE, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = _int(0, nullable=False)
    created_at: Mapped[int] = _bigint(0, nullable=False)
    type: Mapped[int] = _int(0, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False, default="")
    username: Mapped[str] = _str(64, nullable=False)
    token_name: Mapped[str] = _str(128, nullable=False)
    token_id: Mapped[int] = _int(0, nullable=False)
    model_name: Mapped[str] = _str(191, nullable=False)
    quota: Mapped[int] = _bigint(0, nullable=False)
    prompt_tokens: Mapped[int] = _int(0, nullable=False)
    completion_tokens: Mapped[int] = _int(0, nullable=False)
    cached_tokens: Mapped[int] = _int(0, nullable=False)
    reasoning_tokens: Mapped[int] = _int(0, nullable=False)
    channel_id: Mapped[int] = _int(0, nullable=False)
    request_id: Mapped[str] = _str(64, nullable=False)
    elapsed_time: Mapped[int] = _bigint(0, nullable=False)  # milliseconds
    is_stream: Mapped[bool] = _bool(False, nullable=False)
    system_prompt_reset: Mapped[bool] = _bool(False, nullable=False)
    ratios: Mapped[str | None] = mapped_column(Text, nullable=True)


class LogDailyUsage(LogBase):
    """Consume logs summed per user, UTC day and model: what `/api/user/dashboard` reads.

    Beyond One API, which groups the whole `logs` table on every dashboard view. Billing adds
    to a row in the transaction that writes the consume logs it sums, so the two agree; the
    logs migration fills it from the consume logs already there. Deleting logs (by hand or by
    `LogRetentionDays`) leaves it alone: it is about one row per user, model and day.

    `day` counts days since 1970-01-01 UTC (`created_at // 86400`). `model_name` compares
    exactly on MySQL/MariaDB too, so "GPT-4" and "gpt-4" are two rows there as everywhere.
    """

    __tablename__ = "log_daily_usage"
    __table_args__ = (Index("ix_log_daily_usage_day", "day"), MYSQL_TABLE_OPTIONS)

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model_name: Mapped[str] = mapped_column(credential(191), primary_key=True)
    request_count: Mapped[int] = _bigint(0, nullable=False)
    quota: Mapped[int] = _bigint(0, nullable=False)
    prompt_tokens: Mapped[int] = _bigint(0, nullable=False)
    completion_tokens: Mapped[int] = _bigint(0, nullable=False)
