from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Index, MetaData, String, inspect, text
from sqlalchemy.engine import Connection

from libs.common.db import Database, MigrationError, SchemaNotReadyError
from libs.common.db.migrations import (
    ENVIRONMENTS,
    current_revisions,
    downgrade,
    head_revisions,
    is_at_head,
    upgrade,
    wait_for_schema,
)
from libs.common.db.migrations._environment import Environment, configure_options
from libs.common.db.models import Base, LogBase

ALEMBIC_TABLES = {"alembic_version", "alembic_version_logs"}
MAIN_TABLES = {
    "users",
    "tokens",
    "channels",
    "abilities",
    "options",
    "redemptions",
    "settled_requests",
}
LOG_TABLES = {"logs", "log_daily_usage"}


async def table_names(database: Database, *, logs: bool = False) -> set[str]:
    engine = database.logs_engine if logs else database.engine
    async with engine.connect() as connection:
        names: list[str] = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names)


async def schema_differences(
    database: Database, environment: Environment, metadata: MetaData | None = None
) -> list[Any]:
    engine = database.logs_engine if environment.name == "logs" else database.engine

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts=configure_options(environment))
        return list(compare_metadata(context, metadata or environment.metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


async def test_upgrade_creates_every_table_and_downgrade_removes_them(database: Database) -> None:
    assert await current_revisions(database) == {"main": None, "logs": None}

    await upgrade(database)

    assert await table_names(database) == MAIN_TABLES | LOG_TABLES | ALEMBIC_TABLES
    assert await current_revisions(database) == head_revisions()
    assert await is_at_head(database)

    await upgrade(database)  # already at head: nothing to do, nothing fails
    assert await is_at_head(database)

    await downgrade(database)

    assert await table_names(database) <= ALEMBIC_TABLES
    assert await current_revisions(database) == {"main": None, "logs": None}
    assert not await is_at_head(database)


async def test_migrated_schema_equals_the_models(migrated: Database) -> None:
    assert await schema_differences(migrated, ENVIRONMENTS["main"]) == []
    assert await schema_differences(migrated, ENVIRONMENTS["logs"]) == []

    # The check is only worth something if a drifted model fails it.
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    # (Assign new type objects: copied columns share the models' ones.)
    drifted.tables["tokens"].c.name.type = String(100)
    drifted.tables["users"].c.quota.server_default = None
    Index("ix_users_display_name", drifted.tables["users"].c.display_name)
    drifted.tables["channels"].c.weight.type = BigInteger()

    differences = await schema_differences(migrated, ENVIRONMENTS["main"], drifted)

    described = repr(differences)
    assert "ix_users_display_name" in described
    assert "'tokens', 'name'" in described
    assert "'users', 'quota'" in described
    assert "'channels', 'weight'" in described


async def test_concurrent_upgrades_serialise(database_url: str) -> None:
    # Two admin replicas starting at once: both upgrades succeed, the schema is built once.
    replicas = [Database(database_url), Database(database_url)]
    try:
        await asyncio.gather(*(upgrade(replica) for replica in replicas))
        assert await is_at_head(replicas[0])
        assert await schema_differences(replicas[0], ENVIRONMENTS["main"]) == []
    finally:
        for replica in replicas:
            await replica.dispose()


@pytest.fixture
async def sqlite_database(sqlite_url: str) -> AsyncIterator[Database]:
    """For checks of this module's own logic, where the backend makes no difference."""
    database = Database(sqlite_url)
    yield database
    await database.dispose()


async def test_a_revision_id_targets_its_own_environment(sqlite_database: Database) -> None:
    database = sqlite_database
    await upgrade(database, head_revisions()["logs"])
    assert await current_revisions(database) == {"main": None, "logs": head_revisions()["logs"]}
    assert await table_names(database) == LOG_TABLES | {"alembic_version_logs"}

    await downgrade(database, "base")
    assert await table_names(database) <= ALEMBIC_TABLES


async def test_unknown_revision_is_a_migration_error(sqlite_database: Database) -> None:
    with pytest.raises(MigrationError, match="no migration environment has the revision"):
        await upgrade(sqlite_database, "nope_9999")


async def test_separate_logs_database(postgres_url: str, tmp_path: Path) -> None:
    logs_url = f"sqlite+aiosqlite:///{tmp_path / 'logs' / 'logs.db'}"
    database = Database(postgres_url, logs_url)
    try:
        assert database.logs_separate
        assert (database.dialect, database.logs_dialect) == ("postgresql", "sqlite")

        await upgrade(database)

        assert await table_names(database) == MAIN_TABLES | {"alembic_version"}
        assert await table_names(database, logs=True) == LOG_TABLES | {"alembic_version_logs"}
        assert await is_at_head(database)
        assert await schema_differences(database, ENVIRONMENTS["logs"]) == []

        await downgrade(database)

        assert await table_names(database) <= ALEMBIC_TABLES
        assert await table_names(database, logs=True) <= ALEMBIC_TABLES
    finally:
        await database.dispose()


async def test_separate_logs_database_on_mariadb(mysql_url: str, postgres_url: str) -> None:
    database = Database(mysql_url, postgres_url)
    try:
        await upgrade(database)
        assert await table_names(database) == MAIN_TABLES | {"alembic_version"}
        assert await table_names(database, logs=True) == LOG_TABLES | {"alembic_version_logs"}
        assert await current_revisions(database) == head_revisions()
    finally:
        await database.dispose()


def test_environments_split_the_tables() -> None:
    assert set(Base.metadata.tables) == MAIN_TABLES
    assert set(LogBase.metadata.tables) == LOG_TABLES
    assert ENVIRONMENTS["main"].version_table == "alembic_version"
    assert ENVIRONMENTS["logs"].version_table == "alembic_version_logs"


# --- wait_for_schema -----------------------------------------------------------------------


async def test_wait_for_schema_times_out_on_an_empty_database(database: Database) -> None:
    with pytest.raises(SchemaNotReadyError) as caught:
        await wait_for_schema(database, timeout=0.3, poll_interval=0.1)
    message = str(caught.value)
    assert "not ready after 0.3s" in message
    assert "main is at nothing (empty)" in message
    assert "oneapi migrate" in message


async def test_wait_for_schema_returns_once_migrated(database: Database) -> None:
    waiting = asyncio.create_task(wait_for_schema(database, timeout=60, poll_interval=0.05))
    await asyncio.sleep(0)  # let it poll the empty database at least once
    assert not waiting.done()

    await upgrade(database)

    await asyncio.wait_for(waiting, timeout=30)


async def test_wait_for_schema_waits_through_an_unreachable_database() -> None:
    database = Database("postgresql+asyncpg://nobody@127.0.0.1:1/oneapi?timeout=1")
    try:
        with pytest.raises(SchemaNotReadyError, match="does not answer"):
            await wait_for_schema(database, timeout=0.3, poll_interval=0.1)
    finally:
        await database.dispose()


async def test_wait_for_schema_refuses_a_newer_schema_at_once(sqlite_database: Database) -> None:
    migrated = sqlite_database
    await upgrade(migrated)
    async with migrated.session() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'main_9999'"))

    with pytest.raises(SchemaNotReadyError, match="does not know"):
        await wait_for_schema(migrated, timeout=30)
    assert not await is_at_head(migrated)
