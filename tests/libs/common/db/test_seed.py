from __future__ import annotations

import asyncio
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import func, select

from libs.common.db import Database, SeedError, Token, User
from libs.common.db.migrations import upgrade
from libs.common.db.seed import seed_first_start
from tests.libs.common.db.conftest import make_settings

TOKEN_KEY = "InitialRootTokenKey0123456789abcdefghijklmnopqrs"  # 48 characters
ACCESS_TOKEN = "InitialRootAccessToken0123456789"  # 32 characters


async def users_and_tokens(database: Database) -> tuple[list[User], list[Token]]:
    async with database.session() as session:
        users = list(await session.scalars(select(User).order_by(User.id)))
        tokens = list(await session.scalars(select(Token).order_by(Token.id)))
    return users, tokens


async def test_first_start_creates_root_once(migrated: Database, tmp_path: Path) -> None:
    await seed_first_start(migrated, make_settings(tmp_path))

    [root], tokens = await users_and_tokens(migrated)
    assert tokens == []
    assert (root.username, root.display_name, root.role, root.status) == (
        "root",
        "Root User",
        100,
        1,
    )
    assert root.quota == 500_000_000_000_000  # needs BIGINT on every backend
    assert (root.used_quota, root.request_count, root.group) == (0, 0, "default")
    assert root.access_token is None
    assert root.aff_code is not None
    assert len(root.aff_code) >= 4
    assert root.password.startswith("$2a$10$")  # Go's bcrypt format, cost 10
    assert bcrypt.checkpw(b"123456", root.password.encode())
    assert not bcrypt.checkpw(b"1234567", root.password.encode())

    # A second start (even with tokens configured now) changes nothing.
    await seed_first_start(migrated, make_settings(tmp_path, initial_root_token=f"sk-{TOKEN_KEY}"))
    [again], tokens = await users_and_tokens(migrated)
    assert tokens == []
    assert (again.id, again.password, again.aff_code, again.quota) == (
        root.id,
        root.password,
        root.aff_code,
        root.quota,
    )


async def test_initial_root_token_and_access_token(migrated: Database, tmp_path: Path) -> None:
    # A key shorter than 48 characters also comes back unchanged (no CHAR padding).
    settings = make_settings(
        tmp_path, initial_root_token="sk-my-root-key", initial_root_access_token=ACCESS_TOKEN
    )
    await seed_first_start(migrated, settings)

    [root], [token] = await users_and_tokens(migrated)
    assert root.access_token == ACCESS_TOKEN
    assert token.key == "my-root-key"  # "sk-" stripped
    assert token.user_id == root.id
    assert (token.name, token.status, token.expired_time, token.unlimited_quota) == (
        "Initial Root Token",
        1,
        -1,
        True,
    )
    assert token.created_time > 0
    async with migrated.session() as session:  # the relay's look-up
        found = await session.scalar(select(Token.id).where(Token.key == "my-root-key"))
    assert found == token.id


async def test_two_replicas_seeding_at_once_create_one_root(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, initial_root_token=TOKEN_KEY)
    replicas = [Database(database_url), Database(database_url)]
    try:
        await upgrade(replicas[0])
        await asyncio.gather(*(seed_first_start(replica, settings) for replica in replicas))
        async with replicas[0].session() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == 1
            assert await session.scalar(select(func.count()).select_from(Token)) == 1
    finally:
        for replica in replicas:
            await replica.dispose()


async def test_existing_users_mean_no_seeding(sqlite_url: str, tmp_path: Path) -> None:
    database = Database(sqlite_url)
    try:
        await upgrade(database)
        async with database.session() as session:
            session.add(User(username="alice", password="x"))
        await seed_first_start(database, make_settings(tmp_path, initial_root_token=TOKEN_KEY))
        users, tokens = await users_and_tokens(database)
        assert [user.username for user in users] == ["alice"]
        assert tokens == []
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("initial_root_token", "sk-" + "x" * 49), ("initial_root_access_token", "y" * 33)],
)
async def test_oversized_initial_tokens_are_refused(
    setting: str, value: str, sqlite_url: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    try:
        with pytest.raises(SeedError, match=setting.upper()) as caught:
            await seed_first_start(database, make_settings(tmp_path, **{setting: value}))
        assert value not in str(caught.value)
    finally:
        await database.dispose()


async def test_leftover_token_with_the_initial_key_is_reported(
    sqlite_url: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    try:
        await upgrade(database)
        async with database.session() as session:
            session.add(Token(user_id=42, key=TOKEN_KEY, name="orphan"))
        with pytest.raises(SeedError, match="already the key of a token") as caught:
            await seed_first_start(database, make_settings(tmp_path, initial_root_token=TOKEN_KEY))
        assert TOKEN_KEY not in str(caught.value)
        users, _ = await users_and_tokens(database)
        assert users == []
    finally:
        await database.dispose()
