"""Queries on `tokens`, always scoped to one owner: no function here reads another's token."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Token


class TokenOrder(StrEnum):
    """One API's `order` of `GET /api/token/`; anything else lists the newest first."""

    REMAIN_QUOTA = "remain_quota"
    USED_QUOTA = "used_quota"


def _owned(user_id: int) -> Select[Token]:
    return select(Token).where(Token.user_id == user_id)


async def list_page(
    session: AsyncSession, user_id: int, *, order: str, offset: int, limit: int
) -> Sequence[Token]:
    statement = _owned(user_id)
    if order == TokenOrder.REMAIN_QUOTA:
        # Unlimited tokens first, as One API: they have the most left.
        statement = statement.order_by(Token.unlimited_quota.desc(), Token.remain_quota.desc())
    elif order == TokenOrder.USED_QUOTA:
        statement = statement.order_by(Token.used_quota.desc())
    # The id breaks ties, so pages neither repeat nor skip a token.
    statement = statement.order_by(Token.id.desc()).offset(offset).limit(limit)
    return (await session.scalars(statement)).all()


async def search(session: AsyncSession, user_id: int, keyword: str) -> Sequence[Token]:
    """The owner's tokens whose name starts with `keyword`, or whose key it is (`sk-` optional).

    One API matches the name prefix only; the key is matched too so a user can find which of
    their tokens a leaked or logged key is. Wildcards in `keyword` are taken literally.
    """
    key = keyword.removeprefix("sk-")
    statement = _owned(user_id).where(
        or_(Token.name.startswith(keyword, autoescape=True), Token.key == key)
    )
    return (await session.scalars(statement.order_by(Token.id.desc()))).all()


async def get(session: AsyncSession, token_id: int, user_id: int) -> Token | None:
    return await session.scalar(_owned(user_id).where(Token.id == token_id))
