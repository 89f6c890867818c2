"""Queries on `users` (and what belongs to a user: tokens, the models of its group).

Deleted accounts (status 3) are kept as rows, as One API keeps them, so logs still name their
owner; every lookup here leaves them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Ability, Token, User, UserStatus
from services.admin.deps import Page

ORDER_COLUMNS: Final = {
    "quota": User.quota,
    "used_quota": User.used_quota,
    "request_count": User.request_count,
}
"""One API's `order` values for the user list, each sorted descending; anything else: by id."""

_LIVE = User.status != UserStatus.DELETED


async def get(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User | None:
    """The user `user_id` unless deleted; `for_update` locks the row until the commit."""
    query = select(User).where(User.id == user_id, _LIVE)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username, _LIVE))


async def username_taken(session: AsyncSession, username: str) -> bool:
    """Whether any row holds `username`, deleted ones included (the unique index does)."""
    return await session.scalar(select(User.id).where(User.username == username)) is not None


async def access_token_taken(session: AsyncSession, access_token: str) -> bool:
    found = await session.scalar(select(User.id).where(User.access_token == access_token))
    return found is not None


async def aff_code_taken(session: AsyncSession, aff_code: str) -> bool:
    return await session.scalar(select(User.id).where(User.aff_code == aff_code)) is not None


async def list_page(session: AsyncSession, page: Page, order: str) -> Sequence[User]:
    """A page of live users, by `order` descending (One API's sort), then newest first."""
    column = ORDER_COLUMNS.get(order, User.id)
    query = (
        select(User)
        .where(_LIVE)
        .order_by(column.desc(), User.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    return (await session.scalars(query)).all()


async def search_page(
    session: AsyncSession, keyword: str, page: Page, *, max_id: int
) -> Sequence[User]:
    """Live users whose id is `keyword`, or whose username, email or display name starts with
    it (case-insensitively on every backend; `%` and `_` are matched literally)."""
    matches: list[ColumnElement[bool]] = [
        User.username.istartswith(keyword, autoescape=True),
        User.email.istartswith(keyword, autoescape=True),
        User.display_name.istartswith(keyword, autoescape=True),
    ]
    if keyword.isascii() and keyword.isdigit() and int(keyword) <= max_id:
        matches.append(User.id == int(keyword))
    query = (
        select(User)
        .where(_LIVE, or_(*matches))
        .order_by(User.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    return (await session.scalars(query)).all()


async def add_quota(session: AsyncSession, user: User, delta: int, *, limit: int) -> bool:
    """`quota = quota + delta` in one statement, unless the result would pass +-`limit`.

    False when refused. Concurrent charges by billing are never overwritten: the increment is
    computed by the database on the row as it is at that moment. `user.quota` is reloaded.
    """
    if delta == 0:
        return True
    bound = User.quota <= limit - delta if delta > 0 else User.quota >= -limit - delta
    result = await session.execute(
        update(User)
        .where(User.id == user.id, bound)
        .values(quota=User.quota + delta)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    await session.refresh(user, ["quota"])
    return result.rowcount == 1


async def tokens_of(session: AsyncSession, user_id: int) -> Sequence[tuple[int, str]]:
    """(id, key) of every token `user_id` owns: what relays index them by."""
    rows = await session.execute(select(Token.id, Token.key).where(Token.user_id == user_id))
    return [(token_id, key) for token_id, key in rows]


async def group_models(session: AsyncSession, group: str) -> list[str]:
    """The models enabled abilities offer to `group`, each once, sorted by code point (the
    same order on every backend, whatever its collation)."""
    query = select(Ability.model).where(Ability.group == group, Ability.enabled).distinct()
    return sorted((await session.scalars(query)).all())
