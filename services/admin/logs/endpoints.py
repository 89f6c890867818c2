"""`/api/log/*` and `/api/user/dashboard`: One API's logs and usage routes.

Logs may live in a database of their own (`LOG_SQL_DSN`), so these routes read them through
a session of the logs database, not the request's unit of work.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin.deps import AdminDep, PageDep, StateDep, UserDep
from services.admin.logs import service
from services.admin.logs.retention import delete_logs_before
from services.admin.logs.schemas import (
    DASHBOARD_DAYS,
    MAX_TIMESTAMP,
    ChannelStat,
    ChannelStatQuery,
    DailyUsage,
    DashboardDays,
    LogItem,
    LogQuery,
    LogStat,
    SearchKeyword,
    SelfLogQuery,
    SelfStatQuery,
)
from services.admin.schemas import Envelope

router = APIRouter(prefix="/api", tags=["logs"])


async def _log_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.database.log_session() as session:
        yield session


LogSessionDep = Annotated[AsyncSession, Depends(_log_session)]


# --- every log (admins) -----------------------------------------------------------------------


@router.get("/log/")
async def list_logs(
    admin: AdminDep,
    session: LogSessionDep,
    page: PageDep,
    query: Annotated[LogQuery, Query()],
) -> Envelope[list[LogItem]]:
    return Envelope(data=await service.list_all(session, query, page))


@router.get("/log/search")
async def search_logs(
    admin: AdminDep,
    session: LogSessionDep,
    keyword: Annotated[SearchKeyword, Query()] = "",
) -> Envelope[list[LogItem]]:
    return Envelope(data=await service.search_all(session, keyword))


@router.get("/log/stat")
async def log_stat(
    admin: AdminDep, session: LogSessionDep, query: Annotated[LogQuery, Query()]
) -> Envelope[LogStat]:
    return Envelope(data=await service.stat_all(session, query))


@router.get("/log/channel_stat")
async def channel_stat(
    admin: AdminDep, session: LogSessionDep, query: Annotated[ChannelStatQuery, Query()]
) -> Envelope[list[ChannelStat]]:
    """Requests, quota and tokens of the consume logs per channel over a range of at most
    90 days (end 0: now; start 0: seven days before the end), the largest quota first."""
    return Envelope(data=await service.channel_stat(session, query, int(time.time())))


@router.delete("/log/")
async def delete_old_logs(
    admin: AdminDep,
    state: StateDep,
    target_timestamp: Annotated[
        int, Query(ge=0, le=MAX_TIMESTAMP, description="logs created before this go (Unix s)")
    ] = 0,
) -> Envelope[int]:
    """Answers how many logs were deleted. The dashboard's aggregate is kept."""
    cutoff = service.deletion_cutoff(target_timestamp)
    return Envelope(data=await delete_logs_before(state.database, cutoff))


# --- the caller's own logs --------------------------------------------------------------------


@router.get("/log/self")
# One API's web UI asks for "/api/log/self/?p=...": answered here, not redirected.
@router.get("/log/self/", include_in_schema=False)
async def list_own_logs(
    actor: UserDep,
    session: LogSessionDep,
    page: PageDep,
    query: Annotated[SelfLogQuery, Query()],
) -> Envelope[list[LogItem]]:
    return Envelope(data=await service.list_own(session, actor, query, page))


@router.get("/log/self/search")
async def search_own_logs(
    actor: UserDep,
    session: LogSessionDep,
    keyword: Annotated[SearchKeyword, Query()] = "",
) -> Envelope[list[LogItem]]:
    return Envelope(data=await service.search_own(session, actor, keyword))


@router.get("/log/self/stat")
async def own_log_stat(
    actor: UserDep, session: LogSessionDep, query: Annotated[SelfStatQuery, Query()]
) -> Envelope[LogStat]:
    return Envelope(data=await service.stat_own(session, actor, query))


# --- dashboard --------------------------------------------------------------------------------


@router.get("/user/dashboard")
async def dashboard(
    actor: UserDep, session: LogSessionDep, days: Annotated[DashboardDays, Query()] = DASHBOARD_DAYS
) -> Envelope[list[DailyUsage]]:
    """The caller's requests, quota and tokens per UTC day and model over the last `days` days
    (today included; One API: 7)."""
    return Envelope(data=await service.dashboard(session, actor, int(time.time()), days))
