"""Reads and writes rows of the `options` table."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Option


async def load_all(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(Option.key, Option.value))
    return {key: value or "" for key, value in rows}


async def save(session: AsyncSession, values: Mapping[str, str]) -> None:
    """Insert or update one row per key, in one statement.

    An upsert, not read-then-insert: two admins saving a key never stored before would otherwise
    both insert it and one would fail on the primary key. Rows go in key order so concurrent
    batches lock them in the same order.
    """
    if not values:
        return
    rows = [{"key": key, "value": values[key]} for key in sorted(values)]
    await session.execute(_upsert(session.get_bind().dialect.name, rows))


def _upsert(dialect: str, rows: list[dict[str, str]]) -> Insert:
    if dialect == "postgresql":
        postgresql = postgresql_insert(Option).values(rows)
        return postgresql.on_conflict_do_update(
            index_elements=[Option.key], set_={"value": postgresql.excluded.value}
        )
    if dialect == "sqlite":
        sqlite = sqlite_insert(Option).values(rows)
        return sqlite.on_conflict_do_update(
            index_elements=[Option.key], set_={"value": sqlite.excluded.value}
        )
    mysql = mysql_insert(Option).values(rows)  # MySQL and MariaDB
    return mysql.on_duplicate_key_update(value=mysql.inserted.value)
