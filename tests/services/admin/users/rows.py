"""Reading and writing rows behind the API's back, for the users tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from libs.common.db.models import Log, Option, Token, User
from tests.services.admin.harness import AdminHarness


async def load_user(admin: AdminHarness, user_id: int) -> User:
    async with admin.database.session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def set_user(admin: AdminHarness, user_id: int, **values: Any) -> None:
    async with admin.database.session() as session:
        await session.execute(update(User).where(User.id == user_id).values(**values))


async def logs_of(admin: AdminHarness, user_id: int) -> list[Log]:
    async with admin.database.log_session() as session:
        query = select(Log).where(Log.user_id == user_id).order_by(Log.id)
        return list((await session.scalars(query)).all())


async def set_option(admin: AdminHarness, key: str, value: str) -> None:
    async with admin.database.session() as session:
        await session.merge(Option(key=key, value=value))


async def add_token(admin: AdminHarness, user_id: int, key: str) -> int:
    async with admin.database.session() as session:
        token = Token(user_id=user_id, key=key, name=key[:8])
        session.add(token)
        await session.flush()
        return token.id
