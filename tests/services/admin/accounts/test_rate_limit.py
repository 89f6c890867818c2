"""The critical limiter (20 per address per 20 minutes) guards every account route but logout."""

from __future__ import annotations

import pytest

from services.admin.deps import CRITICAL_RATE_LIMIT
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

CRITICAL_ROUTES = [
    ("GET", "/api/verification?email=a@example.com"),
    ("GET", "/api/reset_password?email=a@example.com"),
    ("POST", "/api/user/reset"),
    ("POST", "/api/user/register"),
    ("POST", "/api/user/login"),
    ("GET", "/api/oauth/state"),
    ("GET", "/api/oauth/github?code=c&state=s"),
    ("GET", "/api/oauth/oidc?code=c&state=s"),
    ("GET", "/api/oauth/lark?code=c&state=s"),
    ("GET", "/api/oauth/wechat?code=c"),
    ("GET", "/api/oauth/wechat/bind?code=c"),
    ("GET", "/api/oauth/email/bind?email=a@example.com&code=c"),
]


async def _use_up_the_critical_budget(admin: AdminHarness) -> None:
    client = admin.client()
    for _ in range(CRITICAL_RATE_LIMIT):
        assert_ok(await client.get("/api/oauth/state"))


@pytest.mark.parametrize(("method", "url"), CRITICAL_ROUTES)
async def test_the_21st_critical_request_from_an_address_gets_429(
    admin: AdminHarness, method: str, url: str
) -> None:
    await _use_up_the_critical_budget(admin)
    response = await admin.client(admin.root).request(method, url, json={})
    assert_refused(response, status_code=429, message="请求过于频繁")


async def test_logout_is_never_limited(admin: AdminHarness) -> None:
    await _use_up_the_critical_budget(admin)
    assert_ok(await admin.client().get("/api/user/logout"))
