from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from libs.common.db import Channel, Database, Log, LogType, Token, User, UserRole
from libs.common.db.database import PoolOptions
from libs.common.db.migrations import upgrade
from libs.common.db.models import ROOT_QUOTA
from tests.libs.common.db.conftest import make_settings


class Boom(Exception):
    pass


async def channel_names(database: Database) -> list[str]:
    async with database.session() as session:
        return list(await session.scalars(select(Channel.name).order_by(Channel.id)))


async def test_session_commits_when_the_block_succeeds(migrated: Database) -> None:
    async with migrated.session() as session:
        channel = Channel(name="kept", key="sk-upstream", models="gpt-4o")
        session.add(channel)

    # Committed, and still readable without a round trip (expire_on_commit=False).
    assert channel.id is not None
    assert channel.status == 1
    assert await channel_names(migrated) == ["kept"]


async def test_session_rolls_back_when_the_block_raises(migrated: Database) -> None:
    async with migrated.session() as session:
        session.add(Channel(name="kept"))

    async def write_then_fail() -> None:
        async with migrated.session() as session:
            session.add(Channel(name="dropped"))
            kept = await session.scalar(select(Channel).where(Channel.name == "kept"))
            assert kept is not None
            kept.name = "renamed"
            await session.flush()  # the writes reached the database...
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()

    assert await channel_names(migrated) == ["kept"]  # ...and were undone


async def test_a_failed_statement_rolls_back_the_whole_unit(migrated: Database) -> None:
    async def insert_duplicate_keys() -> None:
        async with migrated.session() as session:
            session.add(Token(key="k" * 48, name="first"))
            await session.flush()
            session.add(Token(key="k" * 48, name="duplicate"))

    with pytest.raises(IntegrityError):
        await insert_duplicate_keys()

    async with migrated.session() as session:
        assert await session.scalar(select(func.count()).select_from(Token)) == 0


async def test_big_quotas_round_trip(migrated: Database) -> None:
    big = ROOT_QUOTA * 10  # beyond 32 bits, as every quota column must hold
    async with migrated.session() as session:
        session.add(User(username="rich", password="x", quota=big, used_quota=big + 1))
    async with migrated.log_session() as session:
        session.add(Log(type=LogType.TOPUP, quota=big, created_at=2**40))

    async with migrated.session() as session:
        user = (await session.scalars(select(User))).one()
        log = (await session.scalars(select(Log))).one()
    assert (user.quota, user.used_quota) == (big, big + 1)
    assert (log.quota, log.created_at) == (big, 2**40)


async def test_token_keys_match_case_sensitively(migrated: Database) -> None:
    lower, upper = "abcdefgh" * 6, "ABCDEFGH" * 6
    async with migrated.session() as session:
        session.add_all([Token(key=lower, name="lower"), Token(key=upper, name="upper")])

    async with migrated.session() as session:
        found = await session.scalar(select(Token.name).where(Token.key == lower))
        shorter = await session.scalar(select(Token.name).where(Token.key == "abc"))
    assert found == "lower"
    assert shorter is None


async def test_server_defaults_apply_to_plain_sql(migrated: Database) -> None:
    quote = migrated.engine.dialect.identifier_preparer.quote
    async with migrated.session() as session:
        await session.execute(text("INSERT INTO users (username, password) VALUES ('plain', 'x')"))
        await session.execute(
            text(f"INSERT INTO tokens ({quote('key')}, models) VALUES ('k1', NULL)")
        )
    async with migrated.session() as session:
        user = (await session.scalars(select(User))).one()
        token = (await session.scalars(select(Token))).one()
    assert (user.role, user.status, user.group, user.quota, user.access_token) == (
        UserRole.COMMON,
        1,
        "default",
        0,
        None,
    )
    assert (token.status, token.expired_time, token.unlimited_quota, token.name) == (
        1,
        -1,
        False,
        "",
    )


async def test_ping_and_dialect(database: Database) -> None:
    await database.ping()
    assert database.dialect in ("sqlite", "postgresql", "mysql", "mariadb")
    assert not database.logs_separate
    assert database.logs_engine is database.engine


# --- from_settings -------------------------------------------------------------------------


async def test_default_settings_give_a_tuned_sqlite_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sqlite_busy_timeout=1234)
    database = Database.from_settings(settings)
    try:
        assert not settings.sqlite_file.parent.exists()  # nothing happens before connecting
        async with database.engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
            synchronous = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert settings.sqlite_file.exists()
        assert (journal, busy, synchronous) == ("wal", 1234, 1)  # 1 = NORMAL
    finally:
        await database.dispose()


async def test_log_sql_dsn_moves_logs_to_another_database(
    tmp_path: Path, postgres_url: str
) -> None:
    database = Database.from_settings(make_settings(tmp_path, log_sql_dsn=postgres_url))
    try:
        assert database.logs_separate
        assert (database.dialect, database.logs_dialect) == ("sqlite", "postgresql")
        await upgrade(database)
        async with database.log_session() as session:
            session.add(Log(type=LogType.CONSUME, content="in postgres", quota=7))

        async with database.logs_engine.connect() as connection:
            content = (await connection.execute(text("SELECT content FROM logs"))).scalar()
        async with database.engine.connect() as connection:
            main_tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert content == "in postgres"
        assert "logs" not in main_tables
        await database.ping()
    finally:
        await database.dispose()


async def test_pool_sizes_come_from_the_settings(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(
        tmp_path,
        sql_dsn=postgres_url,
        sql_max_idle_conns=7,
        sql_max_open_conns=20,
        sql_conn_max_lifetime=5,
    )
    database = Database.from_settings(settings)
    try:
        pool = database.engine.pool
        assert pool.size() == 7  # type: ignore[attr-defined]
        assert pool._max_overflow == 13  # type: ignore[attr-defined]
        assert pool._recycle == 300
        assert pool._pre_ping
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (PoolOptions(100, 1000, 60), (100, 900, 3600)),
        (PoolOptions(0, 10, 0), (1, 9, -1)),  # 0 idle is not expressible: keep one
        (PoolOptions(50, 10, 1), (10, 0, 60)),  # idle above open: capped
    ],
)
def test_pool_options_mapping(options: PoolOptions, expected: tuple[int, int, int]) -> None:
    kwargs = options.engine_kwargs()
    assert (kwargs["pool_size"], kwargs["max_overflow"], kwargs["pool_recycle"]) == expected
    assert kwargs["pool_pre_ping"] is True
