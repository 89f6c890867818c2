"""A response ends only once JetStream stored its usage (RELAY_USAGE_CONFIRM_SECONDS).

So a relay killed right after answering has lost no request the client saw succeed
(tests/e2e/test_split_deployment.py kills one under load).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from libs.common.events import USAGE_STREAM
from tests.fakes import FakeUpstream
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

MODEL = "gpt-4o-mini"


@pytest.fixture
async def stack(sqlite_url: str, nats_url: str, nats_namespace: str) -> AsyncIterator[Stack]:
    async with (
        FakeUpstream("openai") as fake,
        relay_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=[SeedChannel("only", 1, fake.url, [MODEL])],
        ) as running,
    ):
        yield running


async def stored_ids(stack: Stack) -> set[str]:
    stream = stack.bus.namespace.stream(USAGE_STREAM)
    info = await stack.bus.jetstream.stream_info(stream)
    ids = set()
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await stack.bus.jetstream.get_msg(stream, sequence)
        ids.add((message.headers or {})["Nats-Msg-Id"])
    return ids if info.state.messages else set()


async def test_the_usage_is_stored_before_the_client_sees_the_end_of_the_answer(
    stack: Stack,
) -> None:
    headers = {"Authorization": f"Bearer {stack.root_key}"}
    seen = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10, headers=headers) as http:
        for i in range(10):
            body = {"model": MODEL, "messages": [{"role": "user", "content": f"q {i}"}]}
            if i % 2:
                async with http.stream(
                    "POST", "/chat/completions", json={**body, "stream": True}
                ) as answer:
                    assert answer.status_code == 200
                    chunks = [line async for line in answer.aiter_lines() if line]
                assert chunks[-1] == "data: [DONE]"
            else:
                answer = await http.post("/chat/completions", json=body)
                assert answer.status_code == 200
            request_id = answer.headers["X-Oneapi-Request-Id"]
            # No waiting here: the answer's end came after JetStream's acknowledgement.
            assert request_id in await stored_ids(stack), i
            seen.append(request_id)
        metrics = await http.get(f"http://127.0.0.1:{stack.runtime.http.port}/metrics")
    assert await stored_ids(stack) == set(seen)
    assert "oneapi_relay_usage_unconfirmed_total 0.0" in metrics.text
