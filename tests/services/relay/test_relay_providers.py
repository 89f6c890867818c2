"""The `openai` SDK through the relay to each provider family, plain and streamed."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from fractions import Fraction

import openai
import pytest

from libs.common.pricing import Pricing
from tests.fakes import FakeUpstream
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

# provider -> (channel type, model, channel config)
PROVIDERS = {
    "azure": (3, "gpt-4o", '{"api_version": "2024-10-21"}'),
    "anthropic": (14, "claude-3-5-sonnet-20241022", ""),
    "gemini": (24, "gemini-1.5-flash", ""),
    "ollama": (30, "llama3.1", ""),
}


@pytest.fixture(params=sorted(PROVIDERS))
async def provider_stack(
    request: pytest.FixtureRequest, sqlite_url: str, nats_url: str, nats_namespace: str
) -> AsyncIterator[tuple[str, FakeUpstream, Stack]]:
    provider = request.param
    channel_type, model, config = PROVIDERS[provider]
    options = {"deployments": {model.replace(".", ""): model}} if provider == "azure" else {}
    async with FakeUpstream(provider, **options) as fake:  # type: ignore[arg-type]
        channel = SeedChannel(provider, channel_type, fake.url, [model], config=config)
        async with relay_stack(
            sql_dsn=sqlite_url, nats_url=nats_url, namespace=nats_namespace, channels=[channel]
        ) as stack:
            yield provider, fake, stack


def quota_of(model: str, channel_type: int, prompt: int, completion: int) -> int:
    pricing = Pricing.default()
    ratio = Fraction(str(pricing.model_ratio(model, channel_type)))
    completion_ratio = Fraction(str(pricing.completion_ratio(model, channel_type)))
    return max(1, math.ceil((prompt + completion * completion_ratio) * ratio))


async def test_chat_and_stream_through_each_provider(
    provider_stack: tuple[str, FakeUpstream, Stack],
) -> None:
    provider, fake, stack = provider_stack
    channel_type, model, _ = PROVIDERS[provider]
    api = openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.root_key, max_retries=0)
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "relay this sentence"},
    ]
    answer = await api.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "relay this sentence"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 3)

    stream = await api.chat.completions.create(  # type: ignore[call-overload]
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert text.split() == ["relay", "this", "sentence"]
    assert usage is not None
    assert usage.completion_tokens == 3

    events = await stack.usage_events(2)
    assert [event.is_stream for event in events] == [False, True]
    for event in events:
        assert (event.prompt_tokens, event.completion_tokens) == (5, 3)
        assert event.quota == quota_of(model, channel_type, 5, 3)
    assert len(fake.requests) == 2
