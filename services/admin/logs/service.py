"""The rules of `/api/log/*` and the dashboard; every function reads a logs-database session.

One API's behaviour, kept:

* listings are newest first (by id), one page of `p`; every filter is an equality, the
  timestamps are inclusive bounds, and 0 or "" does not filter;
* a search answers at most 100 logs whose type equals the keyword or whose content starts with
  it (One API's own-log search compares the type only; here both searches match the same way);
* a stat is the quota of the consume logs that match, whatever `type` says;
* a user's own logs come with `id` 0, as One API omits that column for them.

Beyond One API: a start after the end is refused instead of answering nothing, the
dashboard is read from `log_daily_usage`, not grouped from `logs` on every view, and covers
`days` days (One API's seven by default); admins also get the consumption per channel over a
range of at most 90 days (`/api/log/channel_stat`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Log, LogDailyUsage
from services.admin.deps import Actor, Page
from services.admin.errors import AdminError
from services.admin.logs import repository
from services.admin.logs.repository import LogFilter
from services.admin.logs.schemas import (
    DASHBOARD_DAYS,
    DEFAULT_CHANNEL_STAT_SECONDS,
    MAX_CHANNEL_STAT_SECONDS,
    ChannelStat,
    ChannelStatQuery,
    DailyUsage,
    LogItem,
    LogQuery,
    LogStat,
    SelfLogQuery,
    SelfStatQuery,
)

MAX_RECENT_ITEMS: Final = 100
"""One API's `MaxRecentItems`: the most logs a search answers."""
SECONDS_PER_DAY: Final = 86_400


def _check_range(start: int, end: int) -> None:
    if start and end and start > end:
        raise AdminError("起始时间不能晚于结束时间")


def _admin_filter(query: LogQuery) -> LogFilter:
    _check_range(query.start_timestamp, query.end_timestamp)
    return LogFilter(
        type=query.type,
        start_timestamp=query.start_timestamp,
        end_timestamp=query.end_timestamp,
        username=query.username,
        token_name=query.token_name,
        model_name=query.model_name,
        channel=query.channel,
    )


def _own_filter(actor: Actor, query: SelfLogQuery) -> LogFilter:
    _check_range(query.start_timestamp, query.end_timestamp)
    return LogFilter(
        user_id=actor.id,
        type=query.type,
        start_timestamp=query.start_timestamp,
        end_timestamp=query.end_timestamp,
        token_name=query.token_name,
        model_name=query.model_name,
        channel=query.channel if isinstance(query, SelfStatQuery) else 0,
    )


def _item(log: Log, *, own: bool) -> LogItem:
    return LogItem(
        id=0 if own else log.id,
        user_id=log.user_id,
        created_at=log.created_at,
        type=log.type,
        content=log.content,
        username=log.username,
        token_name=log.token_name,
        model_name=log.model_name,
        quota=log.quota,
        prompt_tokens=log.prompt_tokens,
        completion_tokens=log.completion_tokens,
        channel=log.channel_id,
        request_id=log.request_id,
        elapsed_time=log.elapsed_time,
        is_stream=log.is_stream,
        system_prompt_reset=log.system_prompt_reset,
        token_id=log.token_id,
        cached_tokens=log.cached_tokens,
        reasoning_tokens=log.reasoning_tokens,
    )


def _items(logs: Sequence[Log], *, own: bool) -> list[LogItem]:
    return [_item(log, own=own) for log in logs]


async def _page(session: AsyncSession, where: LogFilter, page: Page) -> Sequence[Log]:
    return await repository.list_logs(session, where, offset=page.offset, limit=page.size)


# --- every log (admins) -----------------------------------------------------------------------


async def list_all(session: AsyncSession, query: LogQuery, page: Page) -> list[LogItem]:
    return _items(await _page(session, _admin_filter(query), page), own=False)


async def search_all(session: AsyncSession, keyword: str) -> list[LogItem]:
    logs = await repository.search_logs(session, keyword, user_id=None, limit=MAX_RECENT_ITEMS)
    return _items(logs, own=False)


async def stat_all(session: AsyncSession, query: LogQuery) -> LogStat:
    return LogStat(quota=await repository.consumed_quota(session, _admin_filter(query)))


async def channel_stat(
    session: AsyncSession, query: ChannelStatQuery, now: int
) -> list[ChannelStat]:
    """The consume logs per channel from `start_timestamp` to `end_timestamp` (inclusive);
    an end of 0 is `now`, a start of 0 seven days before the end."""
    end = query.end_timestamp or now
    start = query.start_timestamp or max(0, end - DEFAULT_CHANNEL_STAT_SECONDS + 1)
    _check_range(start, end)
    if end - start >= MAX_CHANNEL_STAT_SECONDS:
        raise AdminError(f"时间范围不能超过 {MAX_CHANNEL_STAT_SECONDS // SECONDS_PER_DAY} 天")
    return [
        ChannelStat(
            channel=row.channel_id,
            request_count=row.request_count,
            quota=row.quota,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
        )
        for row in await repository.usage_by_channel(session, start, end)
    ]


def deletion_cutoff(target_timestamp: int) -> int:
    """`DELETE /api/log/`: logs created before `target_timestamp` go; 0 is refused."""
    if not target_timestamp:
        raise AdminError("target timestamp is required")
    return target_timestamp


# --- the caller's own logs --------------------------------------------------------------------


async def list_own(
    session: AsyncSession, actor: Actor, query: SelfLogQuery, page: Page
) -> list[LogItem]:
    return _items(await _page(session, _own_filter(actor, query), page), own=True)


async def search_own(session: AsyncSession, actor: Actor, keyword: str) -> list[LogItem]:
    logs = await repository.search_logs(session, keyword, user_id=actor.id, limit=MAX_RECENT_ITEMS)
    return _items(logs, own=True)


async def stat_own(session: AsyncSession, actor: Actor, query: SelfStatQuery) -> LogStat:
    return LogStat(quota=await repository.consumed_quota(session, _own_filter(actor, query)))


# --- dashboard --------------------------------------------------------------------------------


def _date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _usage(row: LogDailyUsage) -> DailyUsage:
    return DailyUsage(
        Day=_date(row.day),
        ModelName=row.model_name,
        RequestCount=row.request_count,
        Quota=row.quota,
        PromptTokens=row.prompt_tokens,
        CompletionTokens=row.completion_tokens,
    )


async def dashboard(
    session: AsyncSession, actor: Actor, now: int, days: int = DASHBOARD_DAYS
) -> list[DailyUsage]:
    """The caller's consumption per UTC day and model, today and the `days - 1` days before
    (One API: seven days), by day then model: One API's `/api/user/dashboard`."""
    today = now // SECONDS_PER_DAY
    rows = await repository.daily_usage(session, actor.id, today - days + 1, today)
    return [_usage(row) for row in rows]
