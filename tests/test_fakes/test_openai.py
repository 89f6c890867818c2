"""The fake OpenAI API as the official ``openai`` SDK sees it."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes import FakeUpstream, error, reply

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}
WEATHER_ARGS = {"city": "fake", "unit": "celsius", "days": 1}


def client(fake: FakeUpstream, key: str = "sk-test-key-123456") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=0)


async def test_chat_echoes_last_user_message_with_exact_usage(openai_fake: FakeUpstream) -> None:
    result = await client(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hello there, fake world"}]},
        ],
    )
    assert result.object == "chat.completion"
    assert result.model == "gpt-4o"
    assert result.choices[0].message.content == "Hello there, fake world"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 4)
    assert result.usage.total_tokens == 11
    sent = openai_fake.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-key-123456"
    assert sent.json["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_stream_with_include_usage_ends_with_usage_chunk(openai_fake: FakeUpstream) -> None:
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 3)
    assert openai_fake.last_request.json["stream_options"] == {"include_usage": True}


async def test_stream_without_include_usage_has_no_usage(openai_fake: FakeUpstream) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            openai_fake.base_url + "/chat/completions",
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
            headers={"Authorization": "Bearer k"},
        ) as resp,
    ):
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()
    events = [line[6:] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])


async def test_tool_call_when_required(openai_fake: FakeUpstream) -> None:
    result = await client(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather please"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert call.id.startswith("call_")
    assert result.usage is not None
    # 1 for the name + the words of '{"city": "fake", "unit": "celsius", "days": 1}'
    assert result.usage.completion_tokens == 1 + 6


async def test_tool_call_streamed_as_deltas(openai_fake: FakeUpstream) -> None:
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Please CALL TOOL now"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                if delta.function is not None:
                    entry["name"] += delta.function.name or ""
                    entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["id"].startswith("call_")
    assert json.loads(calls[0]["arguments"]) == WEATHER_ARGS
    assert usage is not None
    assert usage.completion_tokens == 7


async def test_tool_choice_none_and_tool_results_answer_with_text(
    openai_fake: FakeUpstream,
) -> None:
    api = client(openai_fake)
    no_tools = await api.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call tool please"}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert no_tools.choices[0].message.tool_calls is None
    after_result = await api.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "user", "content": "call tool please"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny and warm"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert after_result.choices[0].message.content == "sunny and warm"


async def test_max_tokens_cuts_the_reply(openai_fake: FakeUpstream) -> None:
    result = await client(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "a b c d e f"}],
        max_completion_tokens=2,
        n=2,
    )
    assert [c.message.content for c in result.choices] == ["a b", "a b"]
    assert {c.finish_reason for c in result.choices} == {"length"}
    assert result.usage is not None
    assert result.usage.completion_tokens == 4


async def test_scripted_reply_and_usage(openai_fake: FakeUpstream) -> None:
    openai_fake.push(reply("scripted words here", cached_tokens=2, reasoning_tokens=5))
    result = await client(openai_fake).chat.completions.create(
        model="o3", messages=[{"role": "user", "content": "x y"}]
    )
    assert result.choices[0].message.content == "scripted words here"
    usage = result.usage
    assert usage is not None
    assert usage.completion_tokens == 3 + 5
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 5
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 2


async def test_validation_errors(openai_fake: FakeUpstream) -> None:
    api = client(openai_fake)
    with pytest.raises(openai.BadRequestError) as bad_options:
        await api.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            stream_options={"include_usage": True},
        )
    assert bad_options.value.param == "stream_options"
    with pytest.raises(openai.BadRequestError) as empty:
        await api.chat.completions.create(model="gpt-4o", messages=[])
    assert empty.value.code == "empty_array"


def test_legacy_completions_sync(openai_fake_thread: FakeUpstream) -> None:
    api = openai.OpenAI(base_url=openai_fake_thread.base_url, api_key="sk-x", max_retries=0)
    result = api.completions.create(model="gpt-3.5-turbo-instruct", prompt="say this please")
    assert result.object == "text_completion"
    assert result.choices[0].text == "say this please"
    assert result.usage is not None
    assert result.usage.total_tokens == 6
    stream = api.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="stream me",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "stream me"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 2


def test_chat_sync_client(openai_fake_thread: FakeUpstream) -> None:
    api = openai.OpenAI(base_url=openai_fake_thread.base_url, api_key="sk-x", max_retries=0)
    with api.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "sync works"}], stream=True
    ) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "sync works"
    assert openai_fake_thread.wait_for_requests_sync(1)[0].json["stream"] is True


async def test_embeddings_float_and_base64_agree(openai_fake: FakeUpstream) -> None:
    api = client(openai_fake)
    # the SDK asks for base64 by default and decodes it
    default = await api.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert openai_fake.last_request.json["encoding_format"] == "base64"
    floats = await api.embeddings.create(
        model="text-embedding-3-small", input=["a b", "c"], encoding_format="float"
    )
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(floats.data[0].embedding) == 16
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.prompt_tokens == 3
    sized = await api.embeddings.create(
        model="text-embedding-3-small", input="a b", dimensions=4, encoding_format="float"
    )
    assert len(sized.data[0].embedding) == 4
    assert abs(sum(v * v for v in sized.data[0].embedding) - 1.0) < 1e-5


async def test_embeddings_base64_wire_format(openai_fake: FakeUpstream) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            openai_fake.base_url + "/embeddings",
            json={"model": "e", "input": "hello", "encoding_format": "base64"},
            headers={"Authorization": "Bearer k"},
        ) as resp,
    ):
        body = await resp.json()
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str)
    values = struct.unpack("<16f", base64.b64decode(encoded))
    assert abs(sum(v * v for v in values) - 1.0) < 1e-5


async def test_images_url_and_b64(openai_fake: FakeUpstream) -> None:
    api = client(openai_fake)
    by_url = await api.images.generate(model="dall-e-3", prompt="a red fox", n=2)
    assert by_url.data is not None
    assert len(by_url.data) == 2
    assert by_url.data[0].revised_prompt == "a red fox"
    url = by_url.data[0].url
    assert url is not None
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")
    inline = await api.images.generate(
        model="dall-e-3", prompt="a red fox", response_format="b64_json"
    )
    assert inline.data is not None
    assert inline.data[0].b64_json is not None
    assert base64.b64decode(inline.data[0].b64_json).startswith(b"\x89PNG")


async def test_speech_returns_audio_bytes(openai_fake: FakeUpstream) -> None:
    api = client(openai_fake)
    mp3 = await api.audio.speech.create(model="tts-1", voice="alloy", input="hello world")
    assert mp3.response.headers["content-type"] == "audio/mpeg"
    assert mp3.content.startswith(b"ID3")
    wav = await api.audio.speech.create(
        model="tts-1", voice="alloy", input="hello world", response_format="wav"
    )
    assert wav.content[:4] == b"RIFF"
    assert wav.content[8:12] == b"WAVE"
    # 0.5 s per word at 24 kHz, 16-bit mono, after the 44-byte header
    assert len(wav.content) == 44 + 2 * 24000


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # SDK marks translations
async def test_transcription_formats(openai_fake: FakeUpstream) -> None:
    api = client(openai_fake)
    audio = ("speech.wav", b"hello from the audio", "audio/wav")
    plain = await api.audio.transcriptions.create(model="whisper-1", file=audio)
    assert plain.text == "hello from the audio"
    upload = openai_fake.last_request.body
    assert upload["model"] == "whisper-1"
    assert upload["file"]["filename"] == "speech.wav"
    assert upload["file"]["content"] == b"hello from the audio"
    text = await api.audio.transcriptions.create(
        model="whisper-1", file=audio, response_format="text"
    )
    assert str(text).strip() == "hello from the audio"
    srt = await api.audio.transcriptions.create(
        model="whisper-1", file=audio, response_format="srt"
    )
    assert str(srt).startswith("1\n00:00:00,000 --> 00:00:02,000\nhello from the audio")
    verbose = await api.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.duration == 2.0
    assert verbose.language == "english"
    assert verbose.words is not None
    assert [w.word for w in verbose.words] == ["hello", "from", "the", "audio"]
    assert verbose.segments is not None
    assert verbose.segments[0].end == 2.0
    translated = await api.audio.translations.create(model="whisper-1", file=audio)
    assert translated.text == "hello from the audio"


async def test_moderation(openai_fake: FakeUpstream) -> None:
    result = await client(openai_fake).moderations.create(
        model="omni-moderation-latest", input=["I will kill it", "nice day"]
    )
    flagged, clean = result.results
    assert flagged.flagged
    assert flagged.categories.violence
    assert not flagged.categories.hate
    assert not clean.flagged
    assert clean.category_scores.violence < 0.01


async def test_models_list_and_retrieve() -> None:
    async with FakeUpstream("openai", models=["gpt-4o", "gpt-4o-mini"]) as fake:
        api = client(fake)
        listed = [m.id async for m in api.models.list()]
        assert listed == ["gpt-4o", "gpt-4o-mini"]
        assert (await api.models.retrieve("gpt-4o")).owned_by == "system"
        with pytest.raises(openai.NotFoundError) as missing:
            await api.models.retrieve("gpt-5")
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            await api.chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "x"}]
            )


@pytest.mark.parametrize(
    ("kind", "exception", "status", "code"),
    [
        ("invalid_request", openai.BadRequestError, 400, None),
        ("authentication", openai.AuthenticationError, 401, "invalid_api_key"),
        ("permission", openai.PermissionDeniedError, 403, "unsupported_country_region_territory"),
        ("rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("insufficient_quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("server_error", openai.InternalServerError, 500, None),
        ("unavailable", openai.InternalServerError, 503, None),
    ],
)
async def test_errors_map_to_sdk_exceptions(
    openai_fake: FakeUpstream, kind: Any, exception: type[Exception], status: int, code: str | None
) -> None:
    openai_fake.push(error(kind, retry_after=7 if kind == "rate_limit" else None))
    with pytest.raises(exception) as caught:
        await client(openai_fake).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}]
        )
    raised = caught.value
    assert isinstance(raised, openai.APIStatusError)
    assert raised.status_code == status
    assert raised.code == code
    assert isinstance(raised.body, dict)
    assert set(raised.body) == {"message", "type", "param", "code"}
    if kind == "rate_limit":
        assert raised.response.headers["retry-after"] == "7"


async def test_key_check() -> None:
    async with FakeUpstream("openai", keys=["sk-good-key-0001"]) as fake:
        ok = await client(fake, "sk-good-key-0001").models.list()
        assert ok.data
        with pytest.raises(openai.AuthenticationError) as bad:
            await client(fake, "sk-bad-key-99999999").models.list()
        assert bad.value.code == "invalid_api_key"
        assert "sk-bad-key-99999999" not in str(bad.value)
        assert fake.last_request.key == "sk-bad-key-99999999"
        async with aiohttp.ClientSession() as http, http.get(fake.base_url + "/models") as resp:
            assert resp.status == 401
            assert "didn't provide an API key" in (await resp.json())["error"]["message"]


async def test_unknown_path_and_bad_json(openai_fake: FakeUpstream) -> None:
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(openai_fake.base_url + "/nope") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["message"] == "Invalid URL (POST /v1/nope)"
        async with http.post(openai_fake.base_url + "/chat/completions", data=b"{oops") as resp:
            assert resp.status == 400
            assert "parse the JSON body" in (await resp.json())["error"]["message"]


async def test_billing_endpoints() -> None:
    from tests.fakes import Billing

    billing = Billing(hard_limit_usd=50.0, used_usd=7.25)
    async with (
        FakeUpstream("openai", billing=billing) as fake,
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as http,
    ):
        async with http.get(fake.url + "/v1/dashboard/billing/subscription") as resp:
            subscription = await resp.json()
        assert subscription["object"] == "billing_subscription"
        assert subscription["hard_limit_usd"] == 50.0
        assert subscription["has_payment_method"] is True
        usage_url = fake.url + "/dashboard/billing/usage?start_date=2025-01-01&end_date=2025-02-01"
        async with http.get(usage_url) as resp:
            assert (await resp.json())["total_usage"] == 725.0
        async with http.get(fake.url + "/v1/dashboard/billing/usage") as resp:
            assert resp.status == 400
