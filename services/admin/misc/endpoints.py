"""Public endpoints: status, notice, about, home page content."""

from __future__ import annotations

from fastapi import APIRouter, Request

from libs.common.options import OptionValues
from services.admin.deps import SessionDep
from services.admin.misc.schemas import Status
from services.admin.options import repository as options_repository
from services.admin.schemas import Envelope

router = APIRouter(prefix="/api", tags=["public"])


async def _options(session: SessionDep) -> OptionValues:
    return OptionValues(await options_repository.load_all(session))


def _plain_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


@router.get("/status")
async def get_status(request: Request, session: SessionDep) -> Envelope[Status]:
    options = await _options(session)
    status = Status(
        version=request.app.version,
        start_time=request.app.state.start_time,
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
    )
    return Envelope(data=status)


@router.get("/notice")
async def get_notice(session: SessionDep) -> Envelope[str]:
    return Envelope(data=(await _options(session)).text("Notice"))


@router.get("/about")
async def get_about(session: SessionDep) -> Envelope[str]:
    return Envelope(data=(await _options(session)).text("About"))


@router.get("/home_page_content")
async def get_home_page_content(session: SessionDep) -> Envelope[str]:
    return Envelope(data=(await _options(session)).text("HomePageContent"))
