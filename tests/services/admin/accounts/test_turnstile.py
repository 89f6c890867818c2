"""Cloudflare Turnstile on verification, password reset and registration."""

from __future__ import annotations

from tests.fakes.oauth import TURNSTILE_SECRET, FakeOAuthProvider
from tests.harness.smtp import SmtpServer
from tests.services.admin.accounts.conftest import set_options, use_smtp
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

REGISTRATION = {"username": "alice", "password": "s3cret-pass"}


async def _enable(admin: AdminHarness) -> None:
    await set_options(admin, TurnstileCheckEnabled=True, TurnstileSecretKey=TURNSTILE_SECRET)


async def test_registration_needs_a_token_cloudflare_accepts(
    admin: AdminHarness, provider: FakeOAuthProvider
) -> None:
    await _enable(admin)
    client = admin.client()
    missing = await client.post("/api/user/register", json=REGISTRATION)
    assert_refused(missing, message="Turnstile token 为空")
    forged = await client.post(
        "/api/user/register", params={"turnstile": "forged"}, json=REGISTRATION
    )
    assert_refused(forged, message="Turnstile 校验失败")

    token = provider.turnstile_token()
    accepted = await client.post(
        "/api/user/register", params={"turnstile": token}, json=REGISTRATION
    )
    assert_ok(accepted)
    check = provider.calls_to("/turnstile/siteverify")[-1]
    assert check.form == {"secret": TURNSTILE_SECRET, "response": token, "remoteip": "127.0.0.1"}


async def test_a_passed_token_serves_the_next_request_as_one_apis_front_end_expects(
    admin: AdminHarness, provider: FakeOAuthProvider, smtp: SmtpServer
) -> None:
    await _enable(admin)
    await use_smtp(admin, smtp)
    client = admin.client()
    token = provider.turnstile_token()
    params = {"email": "alice@example.com", "turnstile": token}
    assert_ok(await client.get("/api/verification", params=params))
    # The same token again (Cloudflare would call it a duplicate): remembered, not re-checked.
    assert_ok(
        await client.post("/api/user/register", params={"turnstile": token}, json=REGISTRATION)
    )
    assert len(provider.calls_to("/turnstile/siteverify")) == 1


async def test_password_reset_requests_are_checked_too(
    admin: AdminHarness, provider: FakeOAuthProvider, smtp: SmtpServer
) -> None:
    await _enable(admin)
    await use_smtp(admin, smtp)
    response = await admin.client().get("/api/reset_password", params={"email": "a@example.com"})
    assert_refused(response, message="Turnstile token 为空")


async def test_a_wrong_secret_fails_the_check(
    admin: AdminHarness, provider: FakeOAuthProvider
) -> None:
    await set_options(admin, TurnstileCheckEnabled=True, TurnstileSecretKey="not-the-secret")
    params = {"turnstile": provider.turnstile_token()}
    response = await admin.client().post("/api/user/register", params=params, json=REGISTRATION)
    assert "not-the-secret" not in assert_refused(response, message="Turnstile 校验失败")


async def test_turnstile_is_not_asked_when_disabled(
    admin: AdminHarness, provider: FakeOAuthProvider
) -> None:
    assert_ok(await admin.client().post("/api/user/register", json=REGISTRATION))
    assert provider.calls_to("/turnstile/siteverify") == []
