"""Schema migrations: Alembic is the only way the schema changes.

Two environments live in this package (so they ship in the wheel):

* ``main/`` — every table but ``logs``; version table ``alembic_version``;
* ``logs/`` — the ``logs`` table; version table ``alembic_version_logs``.

Both run on the main database unless ``LOG_SQL_DSN`` gives ``logs`` a database of its own.
Revision ids carry their environment's name (``main_0001``, ``logs_0001``), so a revision given
to `upgrade` / `downgrade` is applied to the environment that has it; ``head``, ``base`` and
relative steps apply to both. Only the admin target (and ``oneapi migrate``) migrates; every
other target calls `wait_for_schema`. Concurrent upgrades (two admin replicas) serialise on a
PostgreSQL advisory lock / MySQL named lock.

Writing a new revision (developers):

1. change `libs.common.db.models`;
2. ``python -m libs.common.db.migrations revision "add users.foo"`` (``--logs`` for the logs
   table; ``--dsn URL`` to diff against a real server instead of a scratch SQLite file). It
   upgrades the scratch database to head, then autogenerates ``main_000N_add_users_foo.py``;
3. review the file as code (server defaults, index lengths on MySQL, batch mode for SQLite);
4. run ``pytest tests/libs/common/db/test_migrations.py``: it checks upgrade, downgrade and
   that the migrated schema equals the models on SQLite, PostgreSQL and MariaDB.

The same step is available in code as `autogenerate_revision`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.database import Database
from libs.common.db.errors import MigrationError, SchemaNotReadyError
from libs.common.db.migrations._environment import (
    ENVIRONMENTS,
    Environment,
    EnvironmentName,
    alembic_config,
    script_directory,
)

__all__ = [
    "ENVIRONMENTS",
    "autogenerate_revision",
    "current_revisions",
    "downgrade",
    "head_revisions",
    "is_at_head",
    "upgrade",
    "wait_for_schema",
]

_PG_LOCK_KEY = 0x6F6E_6561_7069  # "oneapi"; advisory locks are per database
_LOCK_SECONDS = 300
_BOTH: tuple[EnvironmentName, ...] = ("main", "logs")


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest of both environments)."""
    for name in _environments_for(revision):
        await _apply(database, ENVIRONMENTS[name], "upgrade", revision)


async def downgrade(database: Database, revision: str = "base") -> None:
    """Take the schema down to `revision` (default: empty; every table of oneapi dropped)."""
    for name in reversed(_environments_for(revision)):
        await _apply(database, ENVIRONMENTS[name], "downgrade", revision)


def head_revisions() -> dict[str, str]:
    """This code's newest revision of each environment."""
    return {name: ",".join(sorted(script_directory(name).get_heads())) for name in _BOTH}


async def current_revisions(database: Database) -> dict[str, str | None]:
    """The revision each environment's database is at (None: never migrated)."""
    current: dict[str, str | None] = {}
    for name in _BOTH:
        environment = ENVIRONMENTS[name]
        async with _engine(database, environment).connect() as connection:
            current[name] = await connection.run_sync(_current_revision, environment)
    return current


async def is_at_head(database: Database) -> bool:
    """Whether both environments are at this code's head revision."""
    return await current_revisions(database) == head_revisions()


async def wait_for_schema(
    database: Database,
    timeout: float,  # noqa: ASYNC109 (a deadline for the whole wait, not for one call)
    *,
    poll_interval: float = 0.5,
) -> None:
    """Return once both environments are at head; meant for targets that never migrate.

    Waits through an unreachable database too. Raises SchemaNotReadyError after `timeout`
    seconds, or at once when the database is at a revision this code does not know (a newer
    oneapi migrated it: waiting cannot help).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    heads = head_revisions()
    while True:
        try:
            current = await current_revisions(database)
        except (SQLAlchemyError, OSError) as exc:
            problem = f"the database does not answer ({type(exc).__name__})"
        else:
            if current == heads:
                return
            _refuse_unknown_revisions(current)
            problem = ", ".join(
                f"{name} is at {current[name] or 'nothing (empty)'}, head is {heads[name]}"
                for name in _BOTH
                if current[name] != heads[name]
            )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise SchemaNotReadyError(
                f"database schema not ready after {timeout:g}s: {problem}; "
                "the admin target (or `oneapi migrate`) applies the migrations"
            )
        await asyncio.sleep(min(poll_interval, remaining))


async def autogenerate_revision(
    database: Database, message: str, *, environment: EnvironmentName = "main"
) -> Path | None:
    """Write a new revision of `environment` from the difference between the models and
    `database` (which is first upgraded to head). Returns the file, None when nothing changed.
    """
    await upgrade(database)
    env = ENVIRONMENTS[environment]
    async with _engine(database, env).connect() as connection:
        return await connection.run_sync(_autogenerate, env, message)


# --- internals -------------------------------------------------------------------------------


def _engine(database: Database, environment: Environment) -> AsyncEngine:
    return database.logs_engine if environment.name == "logs" else database.engine


def _environments_for(revision: str) -> Sequence[EnvironmentName]:
    """Which environments a revision argument speaks about."""
    if revision in ("head", "heads", "base") or re.fullmatch(r"[+-]\d+", revision):
        return _BOTH
    owners = [name for name in _BOTH if _knows(name, revision.partition("@")[0] or revision)]
    if not owners:
        raise MigrationError(f"no migration environment has the revision {revision!r}")
    return owners


def _knows(name: EnvironmentName, revision: str) -> bool:
    try:
        return script_directory(name).get_revision(revision) is not None
    except CommandError:
        return False


async def _apply(
    database: Database,
    environment: Environment,
    action: Literal["upgrade", "downgrade"],
    revision: str,
) -> None:
    async with _engine(database, environment).connect() as connection:
        await connection.run_sync(_apply_sync, environment, action, revision)


def _apply_sync(
    connection: Connection,
    environment: Environment,
    action: Literal["upgrade", "downgrade"],
    revision: str,
) -> None:
    config = alembic_config(environment, connection)
    with _migration_lock(connection):
        try:
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            connection.commit()
        except CommandError as exc:
            connection.rollback()
            raise MigrationError(
                f"cannot {action} the {environment.name} schema to {revision}: {exc}"
            ) from exc
        except SQLAlchemyError as exc:
            connection.rollback()
            detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise MigrationError(
                f"{action} of the {environment.name} schema failed: {detail}"
            ) from exc


@contextlib.contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise migrations of one database across processes.

    PostgreSQL: a transaction-level advisory lock; the whole migration runs in that
    transaction (transactional DDL), and the lock goes with its commit or rollback.
    MySQL/MariaDB: a named lock (DDL commits implicitly there), released afterwards.
    SQLite: the migration runs in one ``BEGIN IMMEDIATE`` transaction (the write lock), waiting
    up to the lock timeout for another process's migration instead of the usual busy timeout.
    """
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield
        return
    if backend == "sqlite":
        busy_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        connection.exec_driver_sql(f"PRAGMA busy_timeout={_LOCK_SECONDS * 1000}")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_timeout or 0)}")
        yield
        return
    # Named locks are server-wide: include the database so unrelated databases don't wait.
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    name = "oneapi_migrate_" + hashlib.sha256(str(database).encode()).hexdigest()[:32]
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :seconds)"), {"name": name, "seconds": _LOCK_SECONDS}
    ).scalar()
    connection.commit()
    if got != 1:
        raise MigrationError(
            f"another process kept the migration lock for {_LOCK_SECONDS}s; try again"
        )
    try:
        yield
    finally:
        try:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.commit()
        except SQLAlchemyError:
            # A lock left on a broken connection must not go back to the pool.
            connection.invalidate()


def _current_revision(connection: Connection, environment: Environment) -> str | None:
    context = MigrationContext.configure(
        connection, opts={"version_table": environment.version_table}
    )
    heads = context.get_current_heads()
    return ",".join(sorted(heads)) if heads else None


def _refuse_unknown_revisions(current: dict[str, str | None]) -> None:
    for name in _BOTH:
        for revision in (current[name] or "").split(","):
            if revision and not _knows(name, revision):
                raise SchemaNotReadyError(
                    f"the {name} schema is at revision {revision}, which this version of "
                    f"oneapi does not know (its head is {head_revisions()[name]}); "
                    "upgrade this process"
                )


def _autogenerate(connection: Connection, environment: Environment, message: str) -> Path | None:
    script_dir = script_directory(environment.name)
    numbers = [
        int(match[1])
        for script in script_dir.walk_revisions()
        if (match := re.fullmatch(rf"{environment.name}_(\d+)", script.revision))
    ]
    rev_id = f"{environment.name}_{max(numbers, default=0) + 1:04d}"
    empty: list[bool] = []

    def skip_empty(context: object, revision: object, directives: list[object]) -> None:
        upgrade_ops = getattr(directives[0], "upgrade_ops", None)
        if upgrade_ops is not None and upgrade_ops.is_empty():
            directives[:] = []
            empty.append(True)

    config = alembic_config(environment, connection)
    result = command.revision(
        config,
        message=message,
        autogenerate=True,
        rev_id=rev_id,
        process_revision_directives=skip_empty,  # type: ignore[arg-type]
    )
    script_directory.cache_clear()
    if empty or not isinstance(result, Script):
        return None
    return Path(result.path)
