"""Engines and units of work for the main database and the logs database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from libs.common.db.dsn import database_url, engine_arguments, render_url, validate_url
from libs.common.db.errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from libs.common.settings import Settings

__all__ = ["Database", "PoolOptions"]


@dataclass(frozen=True)
class PoolOptions:
    """Connection pool limits, in One API's terms (`SQL_MAX_*`, `SQL_CONN_MAX_LIFETIME`).

    Mapped onto SQLAlchemy's queue pool: `pool_size` = idle connections kept, `max_overflow` =
    the rest up to `max_open`, `pool_recycle` = lifetime (0: forever). A pool of 0 idle
    connections is not expressible (SQLAlchemy reads 0 as "unbounded"), so at least one is kept.
    """

    max_idle: int = 100
    max_open: int = 1000
    max_lifetime_minutes: int = 60
    sqlite_busy_timeout_ms: int = 3000

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolOptions:
        return cls(
            max_idle=settings.sql_max_idle_conns,
            max_open=settings.sql_max_open_conns,
            max_lifetime_minutes=settings.sql_conn_max_lifetime,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout,
        )

    def engine_kwargs(self) -> dict[str, Any]:
        max_open = max(1, self.max_open)
        pool_size = max(1, min(self.max_idle, max_open))
        return {
            "pool_size": pool_size,
            "max_overflow": max_open - pool_size,
            "pool_recycle": self.max_lifetime_minutes * 60 if self.max_lifetime_minutes else -1,
            "pool_pre_ping": True,
        }


class Database:
    """The process's database access: one engine for the main tables, one for `logs`.

    When no logs URL is given (or it equals the main one) `logs` lives in the main database and
    both names refer to the same engine. Engines connect lazily; nothing is opened here.
    """

    def __init__(
        self,
        url: URL | str,
        logs_url: URL | str | None = None,
        *,
        pool: PoolOptions | None = None,
    ) -> None:
        self._pool = pool or PoolOptions()
        self.url = validate_url(url)
        self.logs_url = validate_url(logs_url, setting="logs database URL") if logs_url else None
        if self.logs_url is not None and self.logs_url == self.url:
            self.logs_url = None
        self.engine = self._create_engine(self.url)
        self.logs_engine = (
            self._create_engine(self.logs_url) if self.logs_url is not None else self.engine
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._log_sessions = (
            async_sessionmaker(self.logs_engine, expire_on_commit=False)
            if self.logs_separate
            else self._sessions
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """`SQL_DSN` (or SQLite at `SQLITE_PATH` inside `DATA_DIR`) and `LOG_SQL_DSN`."""
        main = database_url(settings.sql_dsn, sqlite_file=settings.sqlite_file)
        logs = (
            database_url(
                settings.log_sql_dsn, sqlite_file=settings.sqlite_file, setting="LOG_SQL_DSN"
            )
            if settings.log_sql_dsn.strip()
            else None
        )
        return cls(main, logs, pool=PoolOptions.from_settings(settings))

    # --- properties ------------------------------------------------------------------------

    @property
    def logs_separate(self) -> bool:
        """Whether `logs` lives in a database of its own (`LOG_SQL_DSN`)."""
        return self.logs_engine is not self.engine

    @property
    def dialect(self) -> str:
        """The main database's dialect: "sqlite", "postgresql", "mysql" or "mariadb"."""
        return self.engine.dialect.name

    @property
    def logs_dialect(self) -> str:
        return self.logs_engine.dialect.name

    def __repr__(self) -> str:
        logs = f", logs={render_url(self.logs_url)!r}" if self.logs_url is not None else ""
        return f"Database({render_url(self.url)!r}{logs})"

    # --- units of work ---------------------------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work on the main database: committed when the block ends normally, rolled
        back when it raises. Objects stay usable after the commit (`expire_on_commit=False`)."""
        async with self._sessions.begin() as session:
            yield session

    @asynccontextmanager
    async def log_session(self) -> AsyncIterator[AsyncSession]:
        """The same as `session`, on the database that holds `logs`."""
        async with self._log_sessions.begin() as session:
            yield session

    # --- lifecycle -------------------------------------------------------------------------

    async def ping(self) -> None:
        """Run ``SELECT 1`` on every engine; raises DatabaseUnavailableError when one fails."""
        engines = [self.engine] + ([self.logs_engine] if self.logs_separate else [])
        for engine in engines:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            except Exception as exc:
                raise DatabaseUnavailableError(
                    f"database {render_url(engine.url)} does not answer: {type(exc).__name__}"
                ) from exc

    async def dispose(self) -> None:
        """Close every pooled connection. The engines reconnect if used again."""
        await self.engine.dispose()
        if self.logs_separate:
            await self.logs_engine.dispose()

    # --- engines ---------------------------------------------------------------------------

    def _create_engine(self, url: URL) -> AsyncEngine:
        url, connect_args = engine_arguments(url)
        kwargs = self._pool.engine_kwargs()
        if url.get_backend_name() == "sqlite":
            connect_args.setdefault("timeout", self._pool.sqlite_busy_timeout_ms / 1000)
        engine = create_async_engine(url, connect_args=connect_args, **kwargs)
        if url.get_backend_name() == "sqlite":
            _configure_sqlite(engine, url, self._pool.sqlite_busy_timeout_ms)
        return engine


def _configure_sqlite(engine: AsyncEngine, url: URL, busy_timeout_ms: int) -> None:
    database = url.database or ""
    is_uri = database.startswith("file:") or url.query.get("uri") in ("true", "1")

    @event.listens_for(engine.sync_engine, "do_connect")
    def _create_directory(*_: Any) -> None:
        if not is_uri:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers never block the writer; NORMAL is durable enough with WAL.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()
