"""One API's public account routes: registration, login, email codes, password reset, OAuth.

Rate limits and checks follow One API's router: the critical limiter on everything that sends
mail, checks a password or talks to a provider; Turnstile on verification, reset and
registration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response

from libs.common.options import OptionValues
from services.admin.accounts import oauth, service
from services.admin.accounts.codes import VerificationCodes
from services.admin.accounts.cookies import (
    end_session,
    new_oauth_state,
    signed_in_user,
    start_session,
    take_oauth_state,
)
from services.admin.accounts.oauth import ExternalIdentity, Provider
from services.admin.accounts.outbound import OutboundConfig, OutboundDep
from services.admin.accounts.schemas import (
    EMAIL_MAX_LENGTH,
    LoggedInUser,
    LoginRequest,
    PasswordResetRequest,
    RegisterRequest,
)
from services.admin.accounts.turnstile import TurnstileCheck
from services.admin.deps import (
    CriticalRateLimit,
    OptionsDep,
    StateDep,
    UnitOfWork,
    UnitOfWorkDep,
    UserDep,
)
from services.admin.errors import AdminError, PermissionDenied
from services.admin.schemas import Envelope
from services.admin.security import is_cross_site
from services.admin.state import AdminState

router = APIRouter(prefix="/api", tags=["accounts"])

OAUTH_CODE_MAX_LENGTH: Final = 1024
BIND_DONE: Final = "bind"
"""One API's front-end tells a binding from a login by this message."""


def get_codes(state: StateDep) -> VerificationCodes:
    return VerificationCodes(state.cache)


CodesDep = Annotated[VerificationCodes, Depends(get_codes)]
EmailQuery = Annotated[str, Query(max_length=EMAIL_MAX_LENGTH, description="email address")]
CodeQuery = Annotated[
    str, Query(max_length=OAUTH_CODE_MAX_LENGTH, description="the provider's one-time code")
]
StateQuery = Annotated[
    str,
    Query(alias="state", max_length=128, description="the value `GET /api/oauth/state` gave"),
]


class OAuthStateMismatch(AdminError):
    """One API answers a missing or foreign OAuth state with HTTP 403."""

    status_code = 403

    def __init__(self) -> None:
        super().__init__("state is empty or not same")


STATE_REFUSED: Final[dict[int | str, dict[str, Any]]] = {
    403: {"model": Envelope[None], "description": "the state is missing or not this browser's"}
}


# --- email codes and password reset ---------------------------------------------------------


@router.get("/verification", dependencies=[CriticalRateLimit, TurnstileCheck])
async def send_email_verification(
    uow: UnitOfWorkDep, options: OptionsDep, codes: CodesDep, email: EmailQuery = ""
) -> Envelope[None]:
    """Mail a six-digit code to `email`, which no account may hold yet."""
    await service.send_email_verification(uow.session, options, codes, email)
    return Envelope()


@router.get("/reset_password", dependencies=[CriticalRateLimit, TurnstileCheck])
async def send_password_reset(
    uow: UnitOfWorkDep,
    options: OptionsDep,
    codes: CodesDep,
    background: BackgroundTasks,
    email: EmailQuery = "",
) -> Envelope[None]:
    """Mail a reset link to `email` when an account has it; the answer does not say whether."""
    mail = await service.request_password_reset(uow.session, options, codes, email)
    if mail is not None:
        background.add_task(service.deliver, mail)
    return Envelope()


@router.post("/user/reset", dependencies=[CriticalRateLimit])
async def reset_password(
    body: PasswordResetRequest, uow: UnitOfWorkDep, codes: CodesDep
) -> Envelope[str]:
    """Check a reset link's token; `data` is the account's new password."""
    return Envelope(data=await service.reset_password(uow, codes, body.email, body.token))


# --- registration, login, logout ------------------------------------------------------------


@router.post("/user/register", dependencies=[CriticalRateLimit, TurnstileCheck])
async def register(
    body: RegisterRequest, uow: UnitOfWorkDep, options: OptionsDep, codes: CodesDep
) -> Envelope[None]:
    await service.register(uow, options, codes, body)
    return Envelope()


@router.post("/user/login", dependencies=[CriticalRateLimit])
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    state: StateDep,
    uow: UnitOfWorkDep,
    options: OptionsDep,
) -> Envelope[LoggedInUser]:
    """Check a username (or address) and password; sets the session cookie."""
    if is_cross_site(request):
        # Another site logging the browser into an account of its choosing.
        raise PermissionDenied("跨站请求被拒绝")
    user = await service.authenticate(uow.session, options, body.username, body.password)
    start_session(request, response, state, user)
    return Envelope(data=LoggedInUser.model_validate(user))


@router.get("/user/logout")
async def logout(request: Request, response: Response, state: StateDep) -> Envelope[None]:
    end_session(request, response, state)
    return Envelope()


# --- OAuth ----------------------------------------------------------------------------------


@router.get("/oauth/state", dependencies=[CriticalRateLimit])
async def oauth_state(request: Request, response: Response, state: StateDep) -> Envelope[str]:
    """A state to send to the provider; the callback must bring it back, from this browser."""
    return Envelope(data=await new_oauth_state(request, response, state))


IdentityFetcher = Callable[[OutboundConfig, OptionValues, str], Awaitable[ExternalIdentity]]


@dataclass(frozen=True)
class OAuthCallback:
    """What a provider's redirect brings back, with what answering it needs."""

    request: Request
    response: Response
    state: AdminState
    uow: UnitOfWork
    options: OptionValues
    outbound: OutboundConfig
    code: str
    given_state: str

    async def answer(
        self, provider: Provider, fetch_identity: IdentityFetcher
    ) -> Envelope[LoggedInUser]:
        """Sign in (registering when new) with the provider's code; bind it when signed in."""
        if not await take_oauth_state(self.request, self.response, self.state, self.given_state):
            raise OAuthStateMismatch()
        oauth.ensure_enabled(self.options, provider)
        current = await signed_in_user(self.request, self.state, self.uow.session)
        identity = await fetch_identity(self.outbound, self.options, self.code)
        if current is not None:
            await service.bind_identity(self.uow, current.id, identity)
            return Envelope(message=BIND_DONE)
        user = await service.sign_in_with(self.uow, self.options, identity)
        start_session(self.request, self.response, self.state, user)
        return Envelope(data=LoggedInUser.model_validate(user))


def get_oauth_callback(
    request: Request,
    response: Response,
    state: StateDep,
    uow: UnitOfWorkDep,
    options: OptionsDep,
    outbound: OutboundDep,
    code: CodeQuery = "",
    given_state: StateQuery = "",
) -> OAuthCallback:
    return OAuthCallback(request, response, state, uow, options, outbound, code, given_state)


OAuthCallbackDep = Annotated[OAuthCallback, Depends(get_oauth_callback)]


@router.get("/oauth/github", dependencies=[CriticalRateLimit], responses=STATE_REFUSED)
async def github_oauth(callback: OAuthCallbackDep) -> Envelope[LoggedInUser]:
    """GitHub's callback: sign in or register; when signed in, bind (message "bind")."""
    return await callback.answer(Provider.GITHUB, oauth.github_identity)


@router.get("/oauth/oidc", dependencies=[CriticalRateLimit], responses=STATE_REFUSED)
async def oidc_oauth(callback: OAuthCallbackDep) -> Envelope[LoggedInUser]:
    """The OIDC provider's callback: sign in or register; when signed in, bind."""
    return await callback.answer(Provider.OIDC, oauth.oidc_identity)


@router.get("/oauth/lark", dependencies=[CriticalRateLimit], responses=STATE_REFUSED)
async def lark_oauth(callback: OAuthCallbackDep) -> Envelope[LoggedInUser]:
    """Lark's (Feishu's) callback: sign in or register; when signed in, bind."""
    return await callback.answer(Provider.LARK, oauth.lark_identity)


@router.get("/oauth/wechat", dependencies=[CriticalRateLimit])
async def wechat_oauth(
    request: Request,
    response: Response,
    state: StateDep,
    uow: UnitOfWorkDep,
    options: OptionsDep,
    outbound: OutboundDep,
    code: CodeQuery = "",
) -> Envelope[LoggedInUser]:
    """Sign in with the code the WeChat official account sent the user (no OAuth state)."""
    oauth.ensure_enabled(options, Provider.WECHAT)
    identity = await oauth.wechat_identity(outbound, options, code)
    user = await service.sign_in_with(uow, options, identity)
    start_session(request, response, state, user)
    return Envelope(data=LoggedInUser.model_validate(user))


@router.get("/oauth/wechat/bind", dependencies=[CriticalRateLimit])
async def wechat_bind(
    actor: UserDep,
    uow: UnitOfWorkDep,
    options: OptionsDep,
    outbound: OutboundDep,
    code: CodeQuery = "",
) -> Envelope[None]:
    oauth.ensure_enabled(options, Provider.WECHAT)
    identity = await oauth.wechat_identity(outbound, options, code)
    await service.bind_identity(uow, actor.id, identity)
    return Envelope()


@router.get("/oauth/email/bind", dependencies=[CriticalRateLimit])
async def email_bind(
    actor: UserDep,
    uow: UnitOfWorkDep,
    codes: CodesDep,
    email: EmailQuery = "",
    code: Annotated[str, Query(max_length=64, description="the code mailed to `email`")] = "",
) -> Envelope[None]:
    """Set the caller's address to `email`, proven by the code `GET /api/verification` mailed."""
    await service.bind_email(uow, codes, actor.id, email, code)
    return Envelope()
