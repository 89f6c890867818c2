"""Queries on `logs` and `log_daily_usage`, through a session of the logs database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Log, LogDailyUsage, LogType


@dataclass(frozen=True)
class LogFilter:
    """Which logs a listing or a sum covers; a zero or empty field does not filter."""

    user_id: int | None = None
    type: int = 0
    start_timestamp: int = 0
    end_timestamp: int = 0
    username: str = ""
    token_name: str = ""
    model_name: str = ""
    channel: int = 0

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.user_id is not None:
            conditions.append(Log.user_id == self.user_id)
        if self.type:
            conditions.append(Log.type == self.type)
        if self.start_timestamp:
            conditions.append(Log.created_at >= self.start_timestamp)
        if self.end_timestamp:
            conditions.append(Log.created_at <= self.end_timestamp)
        if self.username:
            conditions.append(Log.username == self.username)
        if self.token_name:
            conditions.append(Log.token_name == self.token_name)
        if self.model_name:
            conditions.append(Log.model_name == self.model_name)
        if self.channel:
            conditions.append(Log.channel_id == self.channel)
        return conditions


def _newest_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(Log.id.desc())


async def list_logs(
    session: AsyncSession, where: LogFilter, *, offset: int, limit: int
) -> Sequence[Log]:
    query = _newest_first(select(Log).where(*where.conditions())).offset(offset).limit(limit)
    return (await session.scalars(query)).all()


async def search_logs(
    session: AsyncSession, keyword: str, *, user_id: int | None, limit: int
) -> Sequence[Log]:
    """Logs whose type is `keyword` (when it is a number) or whose content starts with it."""
    matches: list[ColumnElement[bool]] = [Log.content.startswith(keyword, autoescape=True)]
    if keyword.isascii() and keyword.isdigit() and int(keyword) <= 2**31 - 1:
        matches.append(Log.type == int(keyword))
    query = select(Log).where(or_(*matches))
    if user_id is not None:
        query = query.where(Log.user_id == user_id)
    return (await session.scalars(_newest_first(query).limit(limit))).all()


async def consumed_quota(session: AsyncSession, where: LogFilter) -> int:
    """The quota of the consume logs matching `where` (its `type` is not looked at)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Log.quota), 0)).where(
            Log.type == int(LogType.CONSUME), *replace(where, type=0).conditions()
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class ChannelUsage:
    channel_id: int
    request_count: int
    quota: int
    prompt_tokens: int
    completion_tokens: int


async def usage_by_channel(session: AsyncSession, start: int, end: int) -> list[ChannelUsage]:
    """The consume logs created from `start` to `end` (Unix seconds, inclusive) summed per
    channel, the largest quota first; a range scan of `ix_logs_created_at_type`."""
    quota = func.coalesce(func.sum(Log.quota), 0)
    query = (
        select(
            Log.channel_id,
            func.count(),
            quota,
            func.coalesce(func.sum(Log.prompt_tokens), 0),
            func.coalesce(func.sum(Log.completion_tokens), 0),
        )
        .where(Log.created_at.between(start, end), Log.type == int(LogType.CONSUME))
        .group_by(Log.channel_id)
        .order_by(quota.desc(), Log.channel_id)
    )
    return [
        ChannelUsage(*(int(value or 0) for value in row)) for row in await session.execute(query)
    ]


async def daily_usage(
    session: AsyncSession, user_id: int, first_day: int, last_day: int
) -> Sequence[LogDailyUsage]:
    """`user_id`'s aggregate rows from `first_day` to `last_day` (day numbers, inclusive)."""
    query = (
        select(LogDailyUsage)
        .where(LogDailyUsage.user_id == user_id, LogDailyUsage.day.between(first_day, last_day))
        .order_by(LogDailyUsage.day, LogDailyUsage.model_name)
    )
    return (await session.scalars(query)).all()


async def log_ids_before(session: AsyncSession, before: int, limit: int) -> list[int]:
    """Up to `limit` ids of logs created before `before` (Unix seconds), via the
    `created_at` index."""
    rows = await session.scalars(select(Log.id).where(Log.created_at < before).limit(limit))
    return [int(log_id) for log_id in rows]


async def delete_logs(session: AsyncSession, ids: Sequence[int]) -> int:
    """Delete the logs `ids` (a batch of `log_ids_before`); returns how many were there."""
    if not ids:
        return 0
    result = await session.execute(delete(Log).where(Log.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


async def oldest_usage_day(session: AsyncSession) -> int | None:
    day = await session.scalar(select(func.min(LogDailyUsage.day)))
    return None if day is None else int(day)


async def delete_usage_day(session: AsyncSession, day: int) -> int:
    """Delete the aggregate rows of one day (at most a row per user and model)."""
    result = await session.execute(delete(LogDailyUsage).where(LogDailyUsage.day == day))
    return int(getattr(result, "rowcount", 0) or 0)
