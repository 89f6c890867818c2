"""Reads and deletes of `channels` rows (writes of single rows go through the ORM)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Channel
from services.admin.channels import abilities
from services.admin.schemas import INT32_MAX


async def page(session: AsyncSession, *, offset: int, limit: int) -> Sequence[Channel]:
    """Channels newest first (One API's order: id descending)."""
    query = select(Channel).order_by(Channel.id.desc()).offset(offset).limit(limit)
    return (await session.execute(query)).scalars().all()


async def search(session: AsyncSession, keyword: str) -> Sequence[Channel]:
    """Channels whose id is `keyword`, or whose name starts with it (One API's search).

    Keys are never searched: a search that matched them would tell whoever can search whether
    a guessed key is stored.
    """
    condition = Channel.name.startswith(keyword, autoescape=True)
    if keyword.isdecimal() and 0 < int(keyword) <= INT32_MAX:
        condition = or_(Channel.id == int(keyword), condition)
    query = select(Channel).where(condition).order_by(Channel.id.desc())
    return (await session.execute(query)).scalars().all()


async def get(session: AsyncSession, channel_id: int) -> Channel | None:
    return await session.get(Channel, channel_id)


async def lock_ids_with_status(session: AsyncSession, statuses: Collection[int]) -> list[int]:
    """The ids of channels in `statuses`, locked until the transaction ends (where the
    database locks rows) so that no status change slips in before they are deleted."""
    rows = await session.execute(
        select(Channel.id)
        .where(Channel.status.in_(list(statuses)))
        .order_by(Channel.id)
        .with_for_update()
    )
    return [int(channel_id) for (channel_id,) in rows]


async def delete_channels(session: AsyncSession, channel_ids: Collection[int]) -> None:
    """Delete the channels and their abilities, in the caller's transaction."""
    ids = list(channel_ids)
    if not ids:
        return
    await abilities.remove(session, ids)
    await session.execute(delete(Channel).where(Channel.id.in_(ids)))
