"""The cookies of the account flows: the login session, and the state of an OAuth round trip.

The session cookie is One API's (`session`, 30 days, `Path=/`), `HttpOnly`, `SameSite=Strict`,
and `Secure` when the browser reached us over HTTPS (directly, or through a trusted proxy that
says so in `X-Forwarded-Proto`).

An OAuth state is stored in the shared cache for ten minutes and in a cookie of the browser that
asked for it: the callback must bring both. One API keeps the state in its session for the same
reason: a state alone would let someone hand their own provider login to another person's
browser (logging the victim into the attacker's account, or binding the attacker's GitHub to
the victim's).
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Final

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.cache import CacheError
from libs.common.db.models import User, UserStatus
from libs.common.net import in_networks
from services.admin.accounts.codes import CodeStoreUnavailable
from services.admin.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_SECONDS,
    SessionClaims,
    new_secret,
    password_tag,
)
from services.admin.state import AdminState

logger = logging.getLogger(__name__)

OAUTH_STATE_COOKIE: Final = "oauth_state"
OAUTH_STATE_PATH: Final = "/api/oauth"
OAUTH_STATE_TTL_SECONDS: Final = 600
OAUTH_STATE_LENGTH: Final = 32


def came_over_https(request: Request, state: AdminState) -> bool:
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    proxies = state.settings.trusted_proxies
    if not proxies or not in_networks(peer, proxies):
        return False
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0]
    return forwarded.strip().lower() == "https"


def start_session(request: Request, response: Response, state: AdminState, user: User) -> None:
    claims = SessionClaims(user.id, password_tag(user.password), int(time.time()))
    response.set_cookie(
        SESSION_COOKIE,
        state.sessions.encode(claims),
        max_age=SESSION_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=came_over_https(request, state),
    )


def end_session(request: Request, response: Response, state: AdminState) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=came_over_https(request, state),
    )


async def signed_in_user(request: Request, state: AdminState, session: AsyncSession) -> User | None:
    """The enabled user of a valid session cookie (not an access token: OAuth is a browser's)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    claims = state.sessions.decode(cookie) if cookie else None
    if claims is None:
        return None
    user = await session.get(User, claims.user_id)
    if user is None or password_tag(user.password) != claims.password_tag:
        return None
    return user if user.status == UserStatus.ENABLED else None


def _state_key(value: str) -> str:
    return f"accounts:oauth_state:{value}"


async def new_oauth_state(request: Request, response: Response, state: AdminState) -> str:
    value = new_secret(OAUTH_STATE_LENGTH)
    try:
        await state.cache.set(_state_key(value), b"1", ttl=OAUTH_STATE_TTL_SECONDS)
    except CacheError as exc:
        logger.warning("cannot store an OAuth state: %s", exc)
        raise CodeStoreUnavailable() from None
    response.set_cookie(
        OAUTH_STATE_COOKIE,
        value,
        max_age=OAUTH_STATE_TTL_SECONDS,
        path=OAUTH_STATE_PATH,
        httponly=True,
        # Lax is enough: the cookie proves which browser asked, it authenticates nothing.
        samesite="lax",
        secure=came_over_https(request, state),
    )
    return value


async def take_oauth_state(
    request: Request, response: Response, state: AdminState, given: str
) -> bool:
    """Whether `given` is a live state of this browser; it cannot be used again."""
    remembered = request.cookies.get(OAUTH_STATE_COOKIE, "")
    if not given or not remembered or not hmac.compare_digest(given.encode(), remembered.encode()):
        return False
    response.delete_cookie(
        OAUTH_STATE_COOKIE,
        path=OAUTH_STATE_PATH,
        httponly=True,
        samesite="lax",
        secure=came_over_https(request, state),
    )
    try:
        return await state.cache.delete(_state_key(given)) == 1
    except CacheError as exc:
        logger.warning("cannot check an OAuth state: %s", exc)
        raise CodeStoreUnavailable() from None
