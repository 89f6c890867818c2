"""What happens around a request: disconnects, admin edits reaching the relay, limits, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from libs.common.db.models import Ability, Channel, ChannelStatus, Token, TokenStatus
from libs.common.events import ConfigChanged
from tests.fakes import FakeUpstream, slow
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

MODEL = "gpt-4o-mini"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("openai") as upstream:
        yield upstream


@pytest.fixture
async def stack(
    fake: FakeUpstream, sqlite_url: str, nats_url: str, nats_namespace: str
) -> AsyncIterator[Stack]:
    channels = [SeedChannel("only", 1, fake.url, [MODEL])]
    async with relay_stack(
        sql_dsn=sqlite_url,
        nats_url=nats_url,
        namespace=nats_namespace,
        channels=channels,
        relay_token_rpm=3,
    ) as running:
        yield running


def chat(stream: bool = False, text: str = "hi") -> dict[str, object]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}


async def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_client_that_leaves_mid_stream_stops_the_upstream_and_pays_for_what_it_got(
    stack: Stack, fake: FakeUpstream
) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    fake.push(slow(chunk_delay=0.1))
    headers = {"Authorization": f"Bearer {stack.root_key}"}
    received = 0
    async with (
        httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http,
        http.stream(
            "POST", "/chat/completions", json=chat(True, words), headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"content"' in line:
                received += 1
            if received == 3:
                break
    await wait_for(lambda: fake.state.streams_cut_by_client == 1, 5, "the upstream to be cut")
    [event] = await stack.usage_events(1)
    assert event.is_stream
    assert event.prompt_tokens > 0
    assert 3 <= event.completion_tokens < 40  # what was streamed, counted locally


async def test_a_disabled_token_is_refused_within_a_second_of_the_event(stack: Stack) -> None:
    key = "t" * 48
    token_id = await stack.add_token(key)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer sk-{key}"}
        assert (
            await http.post("/chat/completions", json=chat(), headers=headers)
        ).status_code == 200
        async with stack.database.session() as session:
            await session.execute(
                update(Token).where(Token.id == token_id).values(status=TokenStatus.DISABLED)
            )
        await stack.bus.publish(ConfigChanged(entity="token", ids=[token_id], keys=[key]))
        began = time.monotonic()
        while (
            await http.post("/chat/completions", json=chat(), headers=headers)
        ).status_code != 401:
            assert time.monotonic() - began < 1.0, "the relay still accepts the disabled token"
            await asyncio.sleep(0.05)


async def test_a_disabled_channel_leaves_rotation_within_a_second(
    stack: Stack, fake: FakeUpstream
) -> None:
    channel_id = stack.channels["only"]
    async with stack.database.session() as session:
        await session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(status=ChannelStatus.MANUALLY_DISABLED)
        )
        await session.execute(
            update(Ability).where(Ability.channel_id == channel_id).values(enabled=False)
        )
    await stack.bus.publish(ConfigChanged(entity="channel", ids=[channel_id]))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {stack.root_key}"}
        began = time.monotonic()
        while (
            await http.post("/chat/completions", json=chat(), headers=headers)
        ).status_code != 503:
            assert time.monotonic() - began < 1.0, "the relay still routes to the disabled channel"
            await asyncio.sleep(0.05)


async def test_requests_per_minute_per_token(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {stack.root_key}"}
        statuses = [
            (await http.post("/chat/completions", json=chat(), headers=headers)).status_code
            for _ in range(4)
        ]
        limited = await http.post("/chat/completions", json=chat(), headers=headers)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


async def test_metrics_count_requests_tokens_and_cache(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {stack.root_key}"}
        for _ in range(2):
            assert (await http.post("/chat/completions", json=chat(), headers=headers)).is_success
        metrics = (await http.get(f"http://127.0.0.1:{stack.runtime.http.port}/metrics")).text
    channel = stack.channels["only"]
    assert (
        f'oneapi_relay_requests_total{{channel="{channel}",model="{MODEL}",'
        f'route="/v1/chat/completions",status="200"}} 2.0'
    ) in metrics
    assert f'oneapi_relay_tokens_total{{kind="prompt",model="{MODEL}"}}' in metrics
    assert 'oneapi_relay_cache_lookups_total{result="memory"} 1.0' in metrics
    assert 'oneapi_relay_cache_lookups_total{result="database"} 1.0' in metrics
    assert "oneapi_relay_upstream_ttfb_seconds_bucket" in metrics
    assert "oneapi_relay_in_flight_requests 0.0" in metrics
