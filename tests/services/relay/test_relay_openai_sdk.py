"""The relay as its users see it: the official `openai` SDK pointed at `/v1`, fake upstreams."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from fractions import Fraction

import openai
import pytest

from libs.common.events import UsageEvent
from libs.common.pricing import Pricing
from tests.fakes import FakeUpstream, error, no_usage
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

CHAT_MODEL = "gpt-4o-mini"


def expected_quota(event: UsageEvent) -> int:
    """One API's formula, computed here from the default tables, independently of the relay."""
    pricing = Pricing.default()
    model_ratio = Fraction(str(pricing.model_ratio(event.model, event.channel_type)))
    completion_ratio = Fraction(str(pricing.completion_ratio(event.model, event.channel_type)))
    weighted = event.prompt_tokens + event.completion_tokens * completion_ratio
    return max(1, math.ceil(weighted * model_ratio))


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("openai") as fake:
        yield fake


@pytest.fixture
async def stack(
    openai_fake: FakeUpstream, sqlite_url: str, nats_url: str, nats_namespace: str
) -> AsyncIterator[Stack]:
    channels = [
        SeedChannel(
            "openai",
            1,
            openai_fake.url,
            [
                CHAT_MODEL,
                "gpt-3.5-turbo-instruct",
                "text-embedding-3-small",
                "dall-e-3",
                "tts-1",
                "whisper-1",
                "text-moderation-stable",
            ],
        )
    ]
    async with relay_stack(
        sql_dsn=sqlite_url, nats_url=nats_url, namespace=nats_namespace, channels=channels
    ) as running:
        yield running


def client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.root_key, max_retries=0)


async def test_chat_answer_usage_and_the_usage_event(
    stack: Stack, openai_fake: FakeUpstream
) -> None:
    answer = await client(stack).chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hello there relay"}]
    )
    assert answer.choices[0].message.content == "hello there relay"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 3
    assert answer.usage.completion_tokens == 3
    [event] = await stack.usage_events(1)
    assert event.model == CHAT_MODEL
    assert event.prompt_tokens == 3
    assert event.completion_tokens == 3
    assert event.channel_id == stack.channels["openai"]
    assert event.quota == expected_quota(event)
    assert event.is_stream is False
    assert openai_fake.last_request.key == "sk-upstream"


async def test_streamed_chat_with_usage(stack: Stack, openai_fake: FakeUpstream) -> None:
    stream = await client(stack).chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    usage = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces).split() == ["one", "two", "three", "four"]
    assert usage is not None
    assert usage.completion_tokens == 4
    assert openai_fake.last_request.json["stream_options"] == {"include_usage": True}
    [event] = await stack.usage_events(1)
    assert event.is_stream is True
    assert event.completion_tokens == 4
    assert event.quota == expected_quota(event)


async def test_stream_without_client_usage_still_bills_exactly(
    stack: Stack, openai_fake: FakeUpstream
) -> None:
    stream = await client(stack).chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk the client did not ask for
    assert openai_fake.last_request.json["stream_options"] == {"include_usage": True}
    [event] = await stack.usage_events(1)
    assert (event.prompt_tokens, event.completion_tokens) == (3, 3)


async def test_streamed_tool_call(stack: Stack) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    stream = await client(stack).chat.completions.create(  # type: ignore[call-overload]
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=tools,
        tool_choice="required",
        stream=True,
    )
    name = ""
    arguments = ""
    async for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
    assert name == "get_weather"
    assert arguments == '{"city": "fake"}'


async def test_completions_embeddings_images_speech_transcription_moderation_models(
    stack: Stack,
) -> None:
    api = client(stack)
    completion = await api.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this")
    assert completion.choices[0].text.strip() == "say this"
    embedding = await api.embeddings.create(model="text-embedding-3-small", input="embed me")
    assert len(embedding.data[0].embedding) == 16
    image = await api.images.generate(model="dall-e-3", prompt="a cat", size="1024x1024")
    assert image.data
    speech = await api.audio.speech.create(model="tts-1", voice="alloy", input="hello world")
    assert len(speech.content) > 0
    transcript = await api.audio.transcriptions.create(
        model="whisper-1", file=("hello.txt", b"spoken words here", "audio/wav")
    )
    assert transcript.text == "spoken words here"
    moderation = await api.moderations.create(input="I will kill it")
    assert moderation.results[0].flagged is True
    models = [model.id async for model in api.models.list()]
    assert CHAT_MODEL in models
    assert (await api.models.retrieve(CHAT_MODEL)).id == CHAT_MODEL

    events = {event.mode: event for event in await stack.usage_events(6)}
    assert set(events) == {
        "completion",
        "embedding",
        "image",
        "audio_speech",
        "audio_transcription",
        "moderation",
    }
    pricing = Pricing.default()
    image_event = events["image"]
    assert image_event.quota == math.floor(Fraction(str(pricing.model_ratio("dall-e-3", 1))) * 1000)
    speech_event = events["audio_speech"]
    assert speech_event.quota == math.floor(
        len("hello world") * Fraction(str(pricing.model_ratio("tts-1", 1)))
    )
    stt = events["audio_transcription"]
    assert stt.completion_tokens == 3  # "spoken words here" in cl100k
    assert stt.quota == math.ceil(3 * Fraction(str(pricing.model_ratio("whisper-1", 1))))


async def test_sync_sdk_from_a_thread(stack: Stack) -> None:
    def call() -> str | None:
        sync = openai.OpenAI(base_url=stack.base_url, api_key=stack.root_key, max_retries=0)
        answer = sync.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "sync hello"}]
        )
        return answer.choices[0].message.content

    assert await asyncio.to_thread(call) == "sync hello"


async def test_upstream_error_is_reported_in_openai_format_with_request_id(
    stack: Stack, openai_fake: FakeUpstream
) -> None:
    openai_fake.push(error("invalid_request", message="bad temperature"))
    with pytest.raises(openai.BadRequestError) as caught:
        await client(stack).chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}]
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["message"].startswith("bad temperature (request id: ")
    request_id = caught.value.response.headers["x-oneapi-request-id"]
    assert body["message"].endswith(f"(request id: {request_id})")


async def test_without_upstream_usage_tokens_are_counted_locally(
    stack: Stack, openai_fake: FakeUpstream
) -> None:
    openai_fake.push(no_usage())
    answer = await client(stack).chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "count these words"}]
    )
    assert answer.usage is None
    [event] = await stack.usage_events(1)
    # cl100k: 3 per message + "user" 1 + "count these words" 3, + 3 for the reply
    assert event.prompt_tokens == 10
    assert event.completion_tokens == 3
    assert event.quota == expected_quota(event)
