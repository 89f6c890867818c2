"""Public endpoints: status, notice, about, home page content."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from libs.common.db.models import User, UserRole
from services.admin.deps import OptionsDep, StateDep, UnitOfWorkDep
from services.admin.misc.schemas import Status
from services.admin.schemas import Envelope
from services.admin.security import is_default_root_password

router = APIRouter(prefix="/api", tags=["public"])


def _plain_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


@router.get("/status")
async def get_status(state: StateDep, uow: UnitOfWorkDep, options: OptionsDep) -> Envelope[Status]:
    root_password = await uow.session.scalar(
        select(User.password).where(User.role == UserRole.ROOT).order_by(User.id).limit(1)
    )
    status = Status(
        version=state.version,
        start_time=state.start_time,
        system_name=options.text("SystemName"),
        logo=options.text("Logo"),
        footer_html=options.text("Footer"),
        server_address=options.text("ServerAddress"),
        quota_per_unit=_plain_number(options.number("QuotaPerUnit")),
        display_in_currency=options.flag("DisplayInCurrencyEnabled"),
        top_up_link=options.text("TopUpLink"),
        chat_link=options.text("ChatLink"),
        email_verification=options.flag("EmailVerificationEnabled"),
        github_oauth=options.flag("GitHubOAuthEnabled"),
        github_client_id=options.text("GitHubClientId"),
        lark_client_id=options.text("LarkClientId"),
        oidc=options.flag("OidcEnabled"),
        oidc_client_id=options.text("OidcClientId"),
        oidc_well_known=options.text("OidcWellKnown"),
        oidc_authorization_endpoint=options.text("OidcAuthorizationEndpoint"),
        oidc_token_endpoint=options.text("OidcTokenEndpoint"),
        wechat_login=options.flag("WeChatAuthEnabled"),
        wechat_qrcode=options.text("WeChatAccountQRCodeImageURL"),
        turnstile_check=options.flag("TurnstileCheckEnabled"),
        turnstile_site_key=options.text("TurnstileSiteKey"),
        root_password_is_default=bool(root_password) and is_default_root_password(root_password),
    )
    return Envelope(data=status)


@router.get("/notice")
async def get_notice(options: OptionsDep) -> Envelope[str]:
    return Envelope(data=options.text("Notice"))


@router.get("/about")
async def get_about(options: OptionsDep) -> Envelope[str]:
    return Envelope(data=options.text("About"))


@router.get("/home_page_content")
async def get_home_page_content(options: OptionsDep) -> Envelope[str]:
    return Envelope(data=options.text("HomePageContent"))
