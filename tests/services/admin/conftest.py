"""Admin fixtures: `admin` runs each test on SQLite, PostgreSQL and MariaDB in turn.

Each backend's database is created and migrated once per xdist worker and emptied before each
test, which keeps hundreds of route tests on three backends fast.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from libs.common.db import Database
from libs.common.db.migrations import upgrade
from tests.conftest import DATABASE_KINDS
from tests.harness.databases import (
    create_mysql_database,
    create_postgres_database,
    drop_mysql_database,
    drop_postgres_database,
)
from tests.services.admin.harness import AdminHarness, admin_harness


class MigratedDatabases:
    """One migrated database per backend for this worker, created on first use."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._urls: dict[str, str] = {}
        self._dropped: list[tuple[str, str, str]] = []

    def url(self, kind: str, server: str) -> str:
        if kind not in self._urls:
            self._urls[kind] = self._create(kind, server)
        return self._urls[kind]

    def _create(self, kind: str, server: str) -> str:
        name = f"oneapi_admin_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            path: Path = self._tmp.mktemp("admin") / "one-api.db"
            url = f"sqlite+aiosqlite:///{path}"
        elif kind == "postgres":
            url = create_postgres_database(server, name)
            self._dropped.append((kind, server, name))
        else:
            url = create_mysql_database(server, name)
            self._dropped.append((kind, server, name))

        async def migrate() -> None:
            database = Database(url)
            try:
                await upgrade(database)
            finally:
                await database.dispose()

        asyncio.run(migrate())
        return url

    def drop_all(self) -> None:
        for kind, server, name in self._dropped:
            if kind == "postgres":
                drop_postgres_database(server, name)
            else:
                drop_mysql_database(server, name)


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedDatabases]:
    databases = MigratedDatabases(tmp_path_factory)
    yield databases
    databases.drop_all()


@pytest.fixture(params=DATABASE_KINDS)
def admin_database_url(
    request: pytest.FixtureRequest, migrated_databases: MigratedDatabases
) -> str:
    """A migrated database of each backend in turn (emptied by the `admin` fixture)."""
    kind: str = request.param
    server = "" if kind == "sqlite" else str(request.getfixturevalue(f"{kind}_server"))
    return migrated_databases.url(kind, server)


@pytest.fixture
async def admin(
    admin_database_url: str,
    nats_url: str,
    nats_namespace: str,
) -> AsyncIterator[AdminHarness]:
    """The admin app on each backend in turn, emptied and seeded, with its own NATS namespace."""
    database = Database(admin_database_url)
    try:
        async with admin_harness(database, nats_url, nats_namespace) as harness:
            yield harness
    finally:
        await database.dispose()
