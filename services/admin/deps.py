"""FastAPI dependencies shared by the admin's feature packages.

UnitOfWorkDep   the request's transaction; committed when the handler returns (before the
                response is sent), events queued on it published after the commit
UserDep / AdminDep / RootDep
                the caller, authenticated by session cookie or access token, with at least
                that role
OptionsDep      every option's current value
PageDep         One API's `p` (0-based page) and a page size
CriticalRateLimit
                the limiter One API puts on login, registration, reset and verification
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.bus import BusError
from libs.common.cache import CacheError
from libs.common.db.models import Log, User, UserRole, UserStatus
from libs.common.events import ConfigChanged, Event
from libs.common.net import client_address
from libs.common.options import OptionValues
from services.admin.errors import AdminError, NotLoggedIn, PermissionDenied, RateLimited
from services.admin.options import repository as options_repository
from services.admin.security import SESSION_COOKIE, is_cross_site, password_tag
from services.admin.state import AdminState

logger = logging.getLogger(__name__)

ITEMS_PER_PAGE: Final = 10
"""One API's page size."""
MAX_PAGE_SIZE: Final = 100
MAX_PAGE: Final = 10**8
"""Past any real table; bounds the offset so no database overflows on it."""
API_RATE_WINDOW_SECONDS: Final = 180
CRITICAL_RATE_LIMIT: Final = 20
CRITICAL_RATE_WINDOW_SECONDS: Final = 1200


def get_state(request: Request) -> AdminState:
    state: AdminState = request.app.state.admin
    return state


StateDep = Annotated[AdminState, Depends(get_state)]


# --- unit of work -----------------------------------------------------------------------------


class UnitOfWork:
    """One request's transaction, and what to announce once it is committed.

    Services write through `session` and never commit; they call `changed` (or `publish`) for
    what relays cache. The dependency commits when the handler returns and only then publishes,
    so a relay never reloads a row before it is visible, and a rolled-back change is never
    announced.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._events: list[Event] = []
        self._logs: list[Log] = []

    def publish(self, event: Event) -> None:
        self._events.append(event)

    def changed(
        self, entity: str, ids: list[int] | None = None, keys: list[str] | None = None
    ) -> None:
        self.publish(ConfigChanged(entity=entity, ids=list(ids or []), keys=list(keys or [])))

    def record(self, log: Log) -> None:
        """Write `log` once the transaction commits (logs may live in their own database)."""
        self._logs.append(log)

    @property
    def pending_events(self) -> list[Event]:
        return list(self._events)

    @property
    def pending_logs(self) -> list[Log]:
        return list(self._logs)


async def get_unit_of_work(state: StateDep) -> AsyncIterator[UnitOfWork]:
    async with state.database.session() as session:
        uow = UnitOfWork(session)
        yield uow
    if uow.pending_logs:
        # A separate logs database cannot share the transaction; One API writes them after too.
        try:
            async with state.database.log_session() as log_session:
                log_session.add_all(uow.pending_logs)
        except SQLAlchemyError:
            logger.exception("could not write %d log rows", len(uow.pending_logs))
    for event in uow.pending_events:
        try:
            await state.bus.publish(event)
        except BusError as exc:
            # Relays also resync every SYNC_FREQUENCY seconds: the change is late, not lost.
            logger.warning("could not announce %s: %s", type(event).__name__, exc)


# "function" scope: the commit happens before the response is sent, so a failed commit is
# answered as an error, never as a success that did not happen.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]


# --- options ----------------------------------------------------------------------------------


async def get_options(uow: UnitOfWorkDep) -> OptionValues:
    return OptionValues(await options_repository.load_all(uow.session))


OptionsDep = Annotated[OptionValues, Depends(get_options)]


# --- the caller -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The authenticated caller."""

    id: int
    username: str
    role: int
    group: str
    by_session: bool

    def outranks(self, role: int) -> bool:
        """Whether the caller may act on a user of `role`: only on strictly lower roles."""
        return self.role > role


async def _authenticate(request: Request, state: AdminState, session: AsyncSession) -> Actor:
    user: User | None = None
    cookie = request.cookies.get(SESSION_COOKIE)
    claims = state.sessions.decode(cookie) if cookie else None
    if claims is not None:
        user = await session.get(User, claims.user_id)
        if user is not None and password_tag(user.password) != claims.password_tag:
            user = None
        if user is not None and is_cross_site(request):
            raise PermissionDenied("跨站请求被拒绝")
        by_session = True
    if user is None:
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header[:7].lower() == "bearer " else header
        if not token:
            raise NotLoggedIn()
        user = await session.scalar(select(User).where(User.access_token == token))
        if user is None:
            raise AdminError("无权进行此操作，access token 无效")
        by_session = False
    if user.status != UserStatus.ENABLED:
        raise AdminError("用户已被封禁")
    return Actor(user.id, user.username, user.role, user.group, by_session)


def require_role(role: UserRole) -> Callable[..., Awaitable[Actor]]:
    async def dependency(request: Request, state: StateDep, uow: UnitOfWorkDep) -> Actor:
        actor = await _authenticate(request, state, uow.session)
        if actor.role < role:
            raise PermissionDenied()
        return actor

    return dependency


UserDep = Annotated[Actor, Depends(require_role(UserRole.COMMON))]
AdminDep = Annotated[Actor, Depends(require_role(UserRole.ADMIN))]
RootDep = Annotated[Actor, Depends(require_role(UserRole.ROOT))]


# --- pagination -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return self.number * self.size


def get_page(
    p: Annotated[int, Query(description="page number, from 0", le=MAX_PAGE)] = 0,
    size: Annotated[int, Query(description="rows per page (1..100)", le=10**6)] = ITEMS_PER_PAGE,
) -> Page:
    # One API reads a negative or missing page as the first one.
    return Page(max(p, 0), min(max(size, 1), MAX_PAGE_SIZE))


PageDep = Annotated[Page, Depends(get_page)]


# --- rate limits ------------------------------------------------------------------------------


def client_ip(request: Request, state: StateDep) -> str:
    return client_address(request, state.settings.trusted_proxies)


ClientIpDep = Annotated[str, Depends(client_ip)]


async def _limit(state: AdminState, key: str, limit: int, window_seconds: int) -> None:
    if limit <= 0:
        return
    try:
        hits = await state.cache.hit(key, window_seconds)
    except CacheError as exc:
        logger.warning("rate limit not applied, cache unavailable: %s", exc)
        return
    if hits > limit:
        raise RateLimited()


async def global_api_rate_limit(state: StateDep, ip: ClientIpDep) -> None:
    """`GLOBAL_API_RATE_LIMIT` requests per address per three minutes, on every `/api` route."""
    await _limit(
        state, f"rl:api:{ip}", state.settings.global_api_rate_limit, API_RATE_WINDOW_SECONDS
    )


async def global_web_rate_limit(state: StateDep, ip: ClientIpDep) -> None:
    """`GLOBAL_WEB_RATE_LIMIT` pages of the web UI per address per three minutes."""
    await _limit(
        state, f"rl:web:{ip}", state.settings.global_web_rate_limit, API_RATE_WINDOW_SECONDS
    )


async def critical_rate_limit(state: StateDep, ip: ClientIpDep) -> None:
    """20 per address per 20 minutes on login, registration, password reset and verification."""
    await _limit(state, f"rl:critical:{ip}", CRITICAL_RATE_LIMIT, CRITICAL_RATE_WINDOW_SECONDS)


CriticalRateLimit = Depends(critical_rate_limit)
