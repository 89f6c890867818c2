"""Queries on `redemptions`, and the one write on `users` redeeming a code makes.

A code's state changes only through conditional UPDATEs (`... WHERE status = ...`) whose row
count says whether the change happened: two requests racing on one code cannot both win,
whatever the backend's isolation level, because the second one's UPDATE waits for the first's
row (or, on SQLite, database) lock and then no longer matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Redemption, RedemptionStatus, User
from services.admin.schemas import INT32_MAX, INT64_MAX

_NO_SYNC: dict[str, Any] = {"synchronize_session": False}


async def _changed(session: AsyncSession, statement: Any) -> bool:
    result = await session.execute(statement, execution_options=_NO_SYNC)
    return int(getattr(result, "rowcount", 0) or 0) > 0


async def list_page(session: AsyncSession, *, offset: int, limit: int) -> Sequence[Redemption]:
    statement = select(Redemption).order_by(Redemption.id.desc()).offset(offset).limit(limit)
    return (await session.scalars(statement)).all()


async def search(session: AsyncSession, keyword: str) -> Sequence[Redemption]:
    """Codes whose id is `keyword` or whose name starts with it (wildcards taken literally)."""
    matches = [Redemption.name.startswith(keyword, autoescape=True)]
    if keyword.isascii() and keyword.isdigit() and int(keyword) <= INT32_MAX:
        matches.append(Redemption.id == int(keyword))
    statement = select(Redemption).where(or_(*matches)).order_by(Redemption.id.desc())
    return (await session.scalars(statement)).all()


async def get(
    session: AsyncSession, redemption_id: int, *, current: bool = False
) -> Redemption | None:
    """The code, reloaded; `current`: by a locking read, not from a REPEATABLE READ snapshot."""
    return await session.get(
        Redemption, redemption_id, populate_existing=True, with_for_update=current
    )


async def add_all(session: AsyncSession, redemptions: Sequence[Redemption]) -> None:
    session.add_all(redemptions)
    await session.flush()


async def delete_by_id(session: AsyncSession, redemption_id: int) -> bool:
    return await _changed(session, delete(Redemption).where(Redemption.id == redemption_id))


async def rename(session: AsyncSession, redemption_id: int, name: str) -> bool:
    statement = update(Redemption).where(Redemption.id == redemption_id).values(name=name)
    return await _changed(session, statement)


async def set_status_unless_used(
    session: AsyncSession, redemption_id: int, status: RedemptionStatus
) -> bool:
    statement = (
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status != RedemptionStatus.USED)
        .values(status=int(status))
    )
    return await _changed(session, statement)


async def set_quota_unless_used(session: AsyncSession, redemption_id: int, quota: int) -> bool:
    statement = (
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status != RedemptionStatus.USED)
        .values(quota=quota)
    )
    return await _changed(session, statement)


async def claim(session: AsyncSession, key: str, *, user_id: int, now: int) -> bool:
    """Mark the enabled code `key` used by `user_id`; False when it is not (or no longer) so."""
    statement = (
        update(Redemption)
        .where(Redemption.key == key, Redemption.status == RedemptionStatus.ENABLED)
        .values(status=int(RedemptionStatus.USED), user_id=user_id, redeemed_time=now)
    )
    return await _changed(session, statement)


async def status_of(session: AsyncSession, key: str) -> int | None:
    """The code's current status, or None when there is no such code.

    A locking read: under MySQL's REPEATABLE READ a plain SELECT would answer from the
    transaction's snapshot, taken before a concurrent redemption committed.
    """
    statement = select(Redemption.status).where(Redemption.key == key).with_for_update()
    return await session.scalar(statement)


async def quota_of(session: AsyncSession, key: str) -> int:
    quota = await session.scalar(select(Redemption.quota).where(Redemption.key == key))
    assert quota is not None, "read after claiming the code in the same transaction"
    return quota


async def credit_user(session: AsyncSession, user_id: int, quota: int) -> bool:
    """`quota = quota + :quota` in SQL; False when the sum would not fit in the column."""
    statement = (
        update(User)
        .where(User.id == user_id, User.quota <= INT64_MAX - quota)
        .values(quota=User.quota + quota)
    )
    return await _changed(session, statement)
