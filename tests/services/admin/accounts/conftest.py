"""Fixtures of the account tests: a fake OAuth provider, a real SMTP server, options."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from html import unescape
from typing import Any

import pytest

from libs.common.db.models import Option
from services.admin.accounts.outbound import OutboundConfig, get_outbound_config
from tests.fakes.oauth import FakeOAuthProvider
from tests.harness.smtp import ReceivedMail, SmtpServer
from tests.services.admin.harness import AdminHarness

SERVER_ADDRESS = "https://one.example"


async def set_options(admin: AdminHarness, **values: Any) -> None:
    """Write option rows directly (the options routes are another package's)."""
    async with admin.database.session() as session:
        for key, value in values.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            await session.merge(Option(key=key, value=str(value)))


def use_provider(admin: AdminHarness, provider: FakeOAuthProvider, timeout: float = 5.0) -> None:
    """Point the admin's fixed outbound addresses (GitHub, Lark, Turnstile) at the fake."""
    config = OutboundConfig(
        github_token_url=provider.github_token_url,
        github_user_url=provider.github_user_url,
        lark_token_url=provider.lark_token_url,
        lark_user_url=provider.lark_user_url,
        turnstile_verify_url=provider.turnstile_verify_url,
        timeout_seconds=timeout,
    )
    admin.app.dependency_overrides[get_outbound_config] = lambda: config


@pytest.fixture
async def provider(admin: AdminHarness) -> AsyncIterator[FakeOAuthProvider]:
    async with FakeOAuthProvider() as fake:
        use_provider(admin, fake)
        yield fake


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def use_smtp(admin: AdminHarness, smtp: SmtpServer, **more: Any) -> None:
    await set_options(
        admin,
        SMTPServer=smtp.host,
        SMTPPort=smtp.port,
        SMTPFrom="noreply@one.example",
        ServerAddress=SERVER_ADDRESS,
        **more,
    )


def mailed_code(mail: ReceivedMail) -> str:
    match = re.search(r"<strong>(\w+)</strong>", mail.html)
    assert match is not None, mail.html
    return match.group(1)


def mailed_link(mail: ReceivedMail) -> str:
    match = re.search(r'href="([^"]+)"', mail.html)
    assert match is not None, mail.html
    return unescape(match.group(1))
