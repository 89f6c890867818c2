"""Fixtures of the database-layer tests: a `Database` on each backend, empty or migrated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.settings import Settings


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings from explicit values only: no `.env`, and the SQLite file under `tmp_path`."""
    values.setdefault("data_dir", tmp_path / "data")
    return Settings(_env_file=None, **values)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An empty database of each kind (SQLite, PostgreSQL, MariaDB)."""
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def migrated(database: Database) -> Database:
    """The same, with the schema at head."""
    await upgrade(database)
    return database
