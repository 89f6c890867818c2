"""Two admin replicas on one database and one Redis: what one stores, the other sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from libs.common.cache import RedisCache, parse_redis_target, redis_cache
from libs.common.db import Database
from services.admin.security import SESSION_COOKIE
from tests.harness.smtp import SmtpServer
from tests.services.admin.accounts.conftest import mailed_code, mailed_link, set_options, use_smtp
from tests.services.admin.harness import AdminHarness, admin_harness, assert_ok, assert_refused


def _redis(url: str) -> RedisCache:
    target = parse_redis_target(url)
    assert target is not None
    return redis_cache(target, prefix="oneapi:replicas:")


@pytest.fixture
async def replicas(
    admin_database_url: str, nats_url: str, nats_namespace: str, redis_url: str
) -> AsyncIterator[tuple[AdminHarness, AdminHarness]]:
    database = Database(admin_database_url)
    caches = (_redis(redis_url), _redis(redis_url))
    try:
        async with (
            admin_harness(database, nats_url, nats_namespace, cache=caches[0]) as first,
            admin_harness(database, nats_url, nats_namespace, cache=caches[1]) as second,
        ):
            yield first, second
    finally:
        for cache in caches:
            await cache.close()
        await database.dispose()


async def test_a_code_mailed_by_one_replica_registers_on_the_other(
    replicas: tuple[AdminHarness, AdminHarness], smtp: SmtpServer
) -> None:
    first, second = replicas
    await use_smtp(first, smtp, EmailVerificationEnabled=True)
    assert_ok(await first.client().get("/api/verification", params={"email": "a@example.com"}))
    code = mailed_code((await smtp.wait_for_async(1))[0])
    form = {
        "username": "alice",
        "password": "s3cret-pass",
        "email": "a@example.com",
        "verification_code": code,
    }
    assert_ok(await second.client().post("/api/user/register", json=form))


async def test_a_reset_token_works_once_across_replicas(
    replicas: tuple[AdminHarness, AdminHarness], smtp: SmtpServer
) -> None:
    first, second = replicas
    await use_smtp(first, smtp)
    await first.add_user("alice", email="alice@example.com")
    assert_ok(
        await first.client().get("/api/reset_password", params={"email": "alice@example.com"})
    )
    token = parse_qs(urlsplit(mailed_link((await smtp.wait_for_async(1))[0])).query)["token"][0]
    body = {"email": "alice@example.com", "token": token}
    assert_ok(await second.client().post("/api/user/reset", json=body))
    assert_refused(await first.client().post("/api/user/reset", json=body), message="重置链接")


async def test_an_oauth_state_from_one_replica_is_accepted_by_the_other(
    replicas: tuple[AdminHarness, AdminHarness],
) -> None:
    first, second = replicas
    await set_options(first, GitHubOAuthEnabled=False)
    state = assert_ok(await first.client().get("/api/oauth/state"))
    browser = second.client(headers={"Cookie": f"oauth_state={state}"})
    # Past the state check, the route speaks of the switch: the state was recognised.
    response = await browser.get("/api/oauth/github", params={"code": "c", "state": state})
    assert_refused(response, message="管理员未开启通过 GitHub 登录以及注册")
    assert SESSION_COOKIE not in response.cookies
