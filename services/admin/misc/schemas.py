"""Wire shapes of the public, unauthenticated endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class Status(BaseModel):
    """`GET /api/status`: what a front-end needs before anyone logs in (One API's fields)."""

    version: str
    start_time: int
    system_name: str
    logo: str
    footer_html: str
    server_address: str
    quota_per_unit: int | float  # One API sends 500000, not 500000.0
    display_in_currency: bool
    top_up_link: str
    chat_link: str
    email_verification: bool
    github_oauth: bool
    github_client_id: str
    lark_client_id: str
    oidc: bool
    oidc_client_id: str
    oidc_well_known: str
    oidc_authorization_endpoint: str
    oidc_token_endpoint: str
    wechat_login: bool
    wechat_qrcode: str
    turnstile_check: bool
    turnstile_site_key: str
    root_password_is_default: bool = False
    """Beyond One API: root still has the first-start password; the UI insists on a change."""
