"""Reads and writes rows of the `options` table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Option


async def load_all(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(Option.key, Option.value))
    return {key: value or "" for key, value in rows}
