"""Queries on `users` for the account flows. Deleted users (status 3) hold no name or address."""

from __future__ import annotations

from typing import Final

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from libs.common.db.models import User, UserStatus
from services.admin.accounts.oauth import Provider

EXTERNAL_ID_COLUMNS: Final[dict[Provider, InstrumentedAttribute[str]]] = {
    Provider.GITHUB: User.github_id,
    Provider.OIDC: User.oidc_id,
    Provider.LARK: User.lark_id,
    Provider.WECHAT: User.wechat_id,
}

_NOT_DELETED = User.status != UserStatus.DELETED


def _same_email(email: str) -> ColumnElement[bool]:
    # Addresses compare case-insensitively on every backend (MySQL's collation already does).
    return func.lower(User.email) == email.strip().lower()


async def username_taken(session: AsyncSession, username: str) -> bool:
    # Deleted users keep their row (renamed), so the unique index spans every status.
    found = await session.scalar(select(User.id).where(User.username == username).limit(1))
    return found is not None


async def email_taken(session: AsyncSession, email: str, *, except_user_id: int = 0) -> bool:
    query = select(User.id).where(_same_email(email), _NOT_DELETED, User.id != except_user_id)
    return await session.scalar(query.limit(1)) is not None


async def users_with_email(session: AsyncSession, email: str) -> list[User]:
    query = select(User).where(_same_email(email), _NOT_DELETED).order_by(User.id)
    return list(await session.scalars(query))


async def find_for_login(session: AsyncSession, name: str) -> User | None:
    """The user named `name`, else the first one with that address.

    The username wins: someone whose username is another user's address cannot shadow them.
    """
    user = await session.scalar(select(User).where(User.username == name))
    if user is not None or "@" not in name:
        return user
    query = select(User).where(_same_email(name), _NOT_DELETED).order_by(User.id).limit(1)
    return await session.scalar(query)


async def find_by_external_id(
    session: AsyncSession, provider: Provider, subject: str
) -> User | None:
    if not subject:
        return None
    column = EXTERNAL_ID_COLUMNS[provider]
    query = select(User).where(column == subject, _NOT_DELETED).order_by(User.id).limit(1)
    return await session.scalar(query)


async def find_inviter(session: AsyncSession, aff_code: str) -> User | None:
    """The user whose invitation code is `aff_code`; an unknown code invites nobody."""
    if not aff_code:
        return None
    return await session.scalar(select(User).where(User.aff_code == aff_code, _NOT_DELETED))


async def max_user_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(User.id))) or 0)


async def add_quota(session: AsyncSession, user_id: int, amount: int) -> None:
    """`quota = quota + amount`, in SQL: concurrent charges and rewards all count."""
    await session.execute(update(User).where(User.id == user_id).values(quota=User.quota + amount))
