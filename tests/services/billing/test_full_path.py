"""openai SDK traffic through the relay, settled by billing in the same process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import openai
import pytest
from sqlalchemy import func, select

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Log, Option, Token, User
from libs.common.db.seed import seed_first_start
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi.targets import build_registry
from tests.fakes import FakeUpstream
from tests.services.billing.support import wait_drained, wait_for
from tests.services.relay.stack import ROOT_TOKEN, SeedChannel, seed_channels

MODEL = "gpt-4"  # ratio 15, completion ratio 2
# The fake echoes the prompt: an answer costs about three times the relay's estimate, so the
# last request admitted overshoots the token's quota (the bounded overshoot of admission).
PROMPT = " ".join(["hello"] * 30)
TOKEN_KEY = "fullpathtoken" + "0" * 35
TOKEN_QUOTA = 5000
USER_QUOTA = 1_000_000


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("openai") as fake:
        yield fake


@pytest.fixture
async def stack(
    upstream: FakeUpstream, sqlite_url: str, nats_url: str, nats_namespace: str
) -> AsyncIterator[tuple[Runtime, Database, Bus, int, int]]:
    config = Settings(
        port=0,
        host="127.0.0.1",
        sql_dsn=sqlite_url,
        nats_url=nats_url,
        nats_namespace=nats_namespace,
        initial_root_token=ROOT_TOKEN,
        batch_update_interval=1,
        shutdown_grace_seconds=5,
    )
    database = Database.from_settings(config)
    await upgrade(database)
    await seed_first_start(database, config)
    await seed_channels(database, [SeedChannel("openai", 1, upstream.url, [MODEL])])
    async with database.session() as session:
        session.add(Option(key="PreConsumedQuota", value="0"))
        user = User(username="spender", password="x", quota=USER_QUOTA)
        session.add(user)
        await session.flush()
        token = Token(
            user_id=user.id,
            key=TOKEN_KEY,
            name="limited",
            remain_quota=TOKEN_QUOTA,
            unlimited_quota=False,
            created_time=int(time.time()),
        )
        session.add(token)
        await session.flush()
        user_id, token_id = user.id, token.id
    runtime = Runtime(config, build_registry(), ["relay", "billing"], version="test")
    bus = await Bus.connect(nats_url, namespace=nats_namespace)
    await runtime.start()
    try:
        yield runtime, database, bus, user_id, token_id
    finally:
        await runtime.stop()
        await bus.close()
        await database.dispose()


async def test_sdk_traffic_ends_with_balances_equal_to_the_logs_and_an_exhausted_token(
    stack: tuple[Runtime, Database, Bus, int, int],
) -> None:
    runtime, database, bus, user_id, token_id = stack
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{runtime.http.port}/v1",
        api_key="sk-" + TOKEN_KEY,
        max_retries=0,
    )
    answered = 0
    refused: openai.APIStatusError | None = None
    for i in range(40):
        try:
            if i % 3 == 2:
                stream = await client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": PROMPT}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": PROMPT}]
                )
            answered += 1
        except openai.APIStatusError as exc:
            refused = exc
            break
    assert refused is not None, "the limited token was never refused"
    assert 2 <= answered < 40

    async def all_logged() -> bool:
        async with database.log_session() as session:
            logged = (await session.execute(select(func.count()).select_from(Log))).scalar_one()
        return int(logged) >= answered

    await wait_for(all_logged, timeout=30, what="billing to log every answered request")
    await wait_drained(bus)

    async with database.log_session() as session:
        logs = (await session.execute(select(Log).where(Log.type == 2))).scalars().all()
    async with database.session() as session:
        token = await session.get(Token, token_id)
        user = await session.get(User, user_id)
    assert token is not None
    assert user is not None
    assert len(logs) == answered
    assert len({log.request_id for log in logs}) == answered
    spent = sum(log.quota for log in logs)
    assert spent > TOKEN_QUOTA
    assert token.used_quota == spent
    assert token.remain_quota == TOKEN_QUOTA - spent
    assert token.status == 4  # exhausted
    assert user.used_quota == spent
    assert user.quota == USER_QUOTA - spent
    assert user.request_count == answered
    assert {log.token_id for log in logs} == {token_id}
    assert all(log.model_name == MODEL and log.prompt_tokens > 0 for log in logs)
    assert sum(log.is_stream for log in logs) >= 1
    # The relay learnt of the exhaustion: the token is refused from now on.
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "one more"}]
        )
