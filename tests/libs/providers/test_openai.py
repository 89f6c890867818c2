"""OpenAIAdaptor against the fake OpenAI upstream: real HTTP through `adaptor.open`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from libs.providers.base import (
    BalanceUnsupportedError,
    ChannelInfo,
    FormFile,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
)
from libs.providers.channel_types import ChannelType, default_base_url
from libs.providers.errors import (
    BalanceReadError,
    InvalidRequestError,
    UnsupportedChannelTypeError,
    UnsupportedModeError,
)
from libs.providers.openai import OPENAI_COMPATIBLE_TYPES, OpenAIAdaptor, request_url
from tests.fakes import (
    Billing,
    FakeUpstream,
    dropped,
    error,
    keepalive,
    mid_stream_error,
    no_usage,
    reply,
)

T = ChannelType

MESSAGES = [
    {"role": "system", "content": "Be brief"},
    {"role": "user", "content": "say hello to the world"},
]
PROMPT_TOKENS = 7  # "Be brief" + "say hello to the world"
REPLY = "say hello to the world"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("openai") as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel_for(
    fake: FakeUpstream, channel_type: int = T.OpenAI, key: str = "sk-test", base: str = ""
) -> ChannelInfo:
    return ChannelInfo(id=1, type=channel_type, key=key, base_url=base or fake.url)


def chat(
    body: dict[str, Any] | None = None, *, stream: bool = False, raw: bool = True, **kw: Any
) -> RelayRequest:
    payload = {"model": "gpt-4o", "messages": MESSAGES, **(body or {})}
    if stream:
        payload["stream"] = True
    # the client's own bytes: indented on purpose, so that re-encoding would show
    encoded = json.dumps(payload, indent=1).encode() if raw else None
    return RelayRequest(Mode.CHAT, payload["model"], payload, stream=stream, raw=encoded, **kw)


async def complete(
    adaptor: OpenAIAdaptor, http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[int, bytes]:
    response = await adaptor.open(http, channel, request)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def stream_through(
    adaptor: OpenAIAdaptor, http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[StreamDecoder, list[dict[str, Any]], bool]:
    """The decoder after the whole stream, the forwarded chunks, whether the stream was cut."""
    response = await adaptor.open(http, channel, request)
    assert response.status == 200
    decoder = adaptor.stream_decoder(request)
    out: list[bytes] = []
    cut = False
    try:
        async for line in response.lines():
            out.extend(decoder.feed(line))
    except aiohttp.ClientPayloadError:
        cut = True
    finally:
        response.release()
    out.extend(decoder.close())
    return decoder, [orjson.loads(chunk) for chunk in out], cut


# --- requests ---------------------------------------------------------------------------------


async def test_chat_passes_the_clients_bytes_through_and_reads_exact_usage(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    adaptor = OpenAIAdaptor()
    request = chat()
    status, body = await complete(adaptor, http, channel_for(fake, key="sk-abc"), request)
    assert status == 200
    sent = fake.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-abc"
    assert sent.headers["content-type"] == "application/json"
    assert sent.raw == request.raw
    out, usage = adaptor.read_response(request, body)
    assert out == body
    assert json.loads(out)["choices"][0]["message"]["content"] == REPLY
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 5)


async def test_cached_and_reasoning_tokens_are_read(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(reply("a b c", cached_tokens=4, reasoning_tokens=2))
    adaptor = OpenAIAdaptor()
    request = chat()
    _, body = await complete(adaptor, http, channel_for(fake), request)
    _, usage = adaptor.read_response(request, body)
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 5)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (4, 2)


async def test_body_without_raw_bytes_is_encoded(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat(raw=False)
    await complete(OpenAIAdaptor(), http, channel_for(fake), request)
    assert fake.last_request.json == request.body


async def test_no_usage_in_answer_leaves_counting_to_the_relay(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(no_usage())
    adaptor = OpenAIAdaptor()
    request = chat()
    _, body = await complete(adaptor, http, channel_for(fake), request)
    assert adaptor.read_response(request, body) == (body, None)


async def test_stream_asks_for_usage_and_forwards_every_chunk(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    adaptor = OpenAIAdaptor()
    request = chat(stream=True)
    decoder, chunks, cut = await stream_through(adaptor, http, channel_for(fake), request)
    sent = fake.last_request
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.raw != request.raw  # re-encoded: something had to change
    assert sent.headers["accept"] == "text/event-stream"
    assert not cut
    # role chunk, five pieces, finish chunk, usage chunk; [DONE] is the relay's to write
    assert len(chunks) == 8
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert decoder.text == REPLY
    assert decoder.usage is not None
    assert (decoder.usage.prompt_tokens, decoder.usage.completion_tokens) == (PROMPT_TOKENS, 5)
    assert decoder.error is None


async def test_stream_already_asking_for_usage_is_passed_through(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat({"stream_options": {"include_usage": True}}, stream=True)
    decoder, _, _ = await stream_through(OpenAIAdaptor(), http, channel_for(fake), request)
    assert fake.last_request.raw == request.raw
    assert decoder.usage is not None


async def test_stream_with_other_stream_options_keeps_them(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat({"stream_options": {"include_usage": False}}, stream=True)
    decoder, _, _ = await stream_through(OpenAIAdaptor(), http, channel_for(fake), request)
    assert fake.last_request.json["stream_options"] == {"include_usage": True}
    assert decoder.usage is not None


async def test_stream_without_usage_request_is_untouched_and_has_no_usage(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat(stream=True, include_usage=False)
    decoder, chunks, _ = await stream_through(OpenAIAdaptor(), http, channel_for(fake), request)
    assert fake.last_request.raw == request.raw
    assert "stream_options" not in fake.last_request.json
    assert all(chunk["choices"] for chunk in chunks)
    assert decoder.usage is None
    assert decoder.text == REPLY  # what the relay counts instead


async def test_stream_tool_call_deltas_are_forwarded_and_counted(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat({"tools": [WEATHER_TOOL], "tool_choice": "required"}, stream=True)
    decoder, chunks, _ = await stream_through(OpenAIAdaptor(), http, channel_for(fake), request)
    arguments = json.dumps({"city": "fake", "days": 1})
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [delta["tool_calls"] for delta in deltas if "tool_calls" in delta]
    assert calls[0][0]["function"]["name"] == "get_weather"
    assert "".join(call[0]["function"]["arguments"] for call in calls) == arguments
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert decoder.text == arguments
    assert decoder.usage is not None
    assert decoder.usage.completion_tokens == 1 + len(arguments.split())


async def test_keepalive_comments_are_not_forwarded(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(keepalive(3))
    decoder, chunks, _ = await stream_through(
        OpenAIAdaptor(), http, channel_for(fake), chat(stream=True)
    )
    assert len(chunks) == 8
    assert decoder.text == REPLY


async def test_mid_stream_error_is_recorded(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(mid_stream_error(after=3, message="model crashed"))
    decoder, chunks, _ = await stream_through(
        OpenAIAdaptor(), http, channel_for(fake), chat(stream=True)
    )
    assert len(chunks) == 3  # role chunk and two pieces; the error frame is not a chunk
    assert decoder.error is not None
    assert decoder.error.message == "model crashed"
    assert decoder.error.type == "server_error"
    assert decoder.usage is None
    assert decoder.text == "say hello"


async def test_dropped_stream_ends_without_usage(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(dropped(after=3))
    decoder, chunks, cut = await stream_through(
        OpenAIAdaptor(), http, channel_for(fake), chat(stream=True)
    )
    assert cut
    assert len(chunks) == 3
    assert decoder.usage is None  # the relay falls back to counting
    assert decoder.text == "say hello"
    assert decoder.error is None


async def test_error_answered_as_json_to_a_stream_with_status_200(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(error("server_error", "upstream broke", status=200))
    decoder, chunks, _ = await stream_through(
        OpenAIAdaptor(), http, channel_for(fake), chat(stream=True)
    )
    assert chunks == []
    assert decoder.error is not None
    assert decoder.error.message == "upstream broke"
    assert decoder.error.status_code == 500


async def test_error_answered_with_status_200_raises_from_read_response(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(error("rate_limit", "slow down", status=200))
    adaptor = OpenAIAdaptor()
    request = chat()
    status, body = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    with pytest.raises(UpstreamError) as caught:
        adaptor.read_response(request, body)
    assert caught.value.message == "slow down"
    assert caught.value.code == "rate_limit_exceeded"


def test_success_status_with_a_body_that_is_not_json() -> None:
    request = chat()
    with pytest.raises(UpstreamError, match="not a JSON object"):
        OpenAIAdaptor().read_response(request, b"<html>gateway</html>")
    with pytest.raises(UpstreamError, match="not a JSON object"):
        OpenAIAdaptor().read_response(request, b"[1, 2]")
    with pytest.raises(UpstreamError, match="empty body"):
        OpenAIAdaptor().read_response(request, b"")


def test_stream_decoder_on_odd_lines() -> None:
    decoder = OpenAIAdaptor().stream_decoder(chat(stream=True))
    chunk = b'{"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}'
    usage_zero = b'{"id":"x","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0}}'
    forwarded = [
        out
        for line in (
            b"event: message",
            b"id: 7",
            b": ping",
            b"",
            b"data:" + chunk,  # no space after the colon
            b"data: not json",
            b'data: {"id":"x","choices":[]}',
            b"data: " + usage_zero,
            b"data: [DONE]",
        )
        for out in decoder.feed(line)
    ]
    assert forwarded == [chunk, usage_zero]
    assert decoder.text == "hi"
    assert decoder.usage is None  # a usage counting nothing is no usage


async def test_completions_stream(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    body: dict[str, Any] = {"model": "gpt-3.5-turbo-instruct", "prompt": "one two three"}
    request = RelayRequest(Mode.COMPLETIONS, body["model"], {**body, "stream": True}, stream=True)
    decoder, chunks, _ = await stream_through(OpenAIAdaptor(), http, channel_for(fake), request)
    assert fake.last_request.path == "/v1/completions"
    assert fake.last_request.json["stream_options"] == {"include_usage": True}
    assert decoder.text == "one two three"
    assert decoder.usage is not None
    assert (decoder.usage.prompt_tokens, decoder.usage.completion_tokens) == (3, 3)
    assert chunks[-1]["usage"]["total_tokens"] == 6


async def test_embeddings_usage(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    body: dict[str, Any] = {"model": "text-embedding-3-small", "input": ["one two", "three"]}
    request = RelayRequest(Mode.EMBEDDINGS, body["model"], body)
    adaptor = OpenAIAdaptor()
    status, answer = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == "/v1/embeddings"
    out, usage = adaptor.read_response(request, answer)
    assert len(json.loads(out)["data"]) == 2
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 0)


@pytest.mark.parametrize(
    ("mode", "body", "path"),
    [
        (Mode.IMAGES, {"model": "dall-e-3", "prompt": "a cat"}, "/v1/images/generations"),
        (Mode.MODERATIONS, {"input": "I will kill it"}, "/v1/moderations"),
    ],
)
async def test_other_json_modes_pass_through_without_usage(
    fake: FakeUpstream, http: aiohttp.ClientSession, mode: Mode, body: dict[str, Any], path: str
) -> None:
    request = RelayRequest(mode, str(body.get("model", "")), body)
    adaptor = OpenAIAdaptor()
    status, answer = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == path
    assert adaptor.read_response(request, answer) == (answer, None)


async def test_speech_is_returned_unchanged(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    body = {"model": "tts-1", "input": "hello there", "voice": "alloy", "response_format": "wav"}
    request = RelayRequest(Mode.SPEECH, "tts-1", body)
    adaptor = OpenAIAdaptor()
    status, audio = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == "/v1/audio/speech"
    assert audio.startswith(b"RIFF")
    assert adaptor.read_response(request, audio) == (audio, None)


async def test_transcription_is_forwarded_as_multipart(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fields = {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "timestamp_granularities[]": ["word", "segment"],
        "temperature": 0.2,
    }
    upload = FormFile("file", "speech.txt", b"the quick brown fox", "text/plain")
    request = RelayRequest(Mode.TRANSCRIPTION, "whisper-1", fields, files=(upload,))
    adaptor = OpenAIAdaptor()
    status, answer = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    sent = fake.last_request
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.body["model"] == "whisper-1"
    assert sent.body["temperature"] == "0.2"
    assert sent.body["timestamp_granularities[]"] == ["word", "segment"]
    assert sent.body["file"] == {
        "filename": "speech.txt",
        "content_type": "text/plain",
        "content": b"the quick brown fox",
    }
    out, usage = adaptor.read_response(request, answer)
    assert out == answer
    assert usage is None  # the relay counts the transcript
    assert [w["word"] for w in json.loads(out)["words"]] == ["the", "quick", "brown", "fox"]


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ("json", b'{"text":"hello world"'),
        ("text", b"hello world\n"),
        ("srt", b"1\n00:00:00,000 --> "),
        ("vtt", b"WEBVTT"),
    ],
)
async def test_translation_formats_pass_through(
    fake: FakeUpstream, http: aiohttp.ClientSession, response_format: str, expected: bytes
) -> None:
    upload = FormFile("file", "a.txt", b"hello world", "text/plain")
    body = {"model": "whisper-1", "response_format": response_format}
    request = RelayRequest(Mode.TRANSLATION, "whisper-1", body, files=(upload,))
    adaptor = OpenAIAdaptor()
    status, answer = await complete(adaptor, http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == "/v1/audio/translations"
    assert answer.startswith(expected)
    assert adaptor.read_response(request, answer) == (answer, None)


def test_transcription_without_a_file_is_refused() -> None:
    request = RelayRequest(Mode.TRANSCRIPTION, "whisper-1", {"model": "whisper-1"})
    channel = ChannelInfo(id=1, type=T.OpenAI, key="k", base_url="https://api.openai.com")
    with pytest.raises(InvalidRequestError, match="file"):
        OpenAIAdaptor().build_request(channel, request)


# --- per-type URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel_type", "base", "mode", "url"),
    [
        (
            T.OpenAI,
            "https://api.openai.com",
            Mode.CHAT,
            "https://api.openai.com/v1/chat/completions",
        ),
        (
            T.OpenAI,
            "https://proxy.example/v1/",
            Mode.EMBEDDINGS,
            "https://proxy.example/v1/embeddings",
        ),
        (
            T.OpenAI,
            "https://gateway.ai.cloudflare.com/v1/acc/gw/openai",
            Mode.CHAT,
            "https://gateway.ai.cloudflare.com/v1/acc/gw/openai/chat/completions",
        ),
        (
            T.Groq,
            "https://api.groq.com/openai",
            Mode.CHAT,
            "https://api.groq.com/openai/v1/chat/completions",
        ),
        (
            T.OpenRouter,
            "https://openrouter.ai/api",
            Mode.CHAT,
            "https://openrouter.ai/api/v1/chat/completions",
        ),
        (
            T.FastGPT,
            "https://fastgpt.run/api/openapi",
            Mode.CHAT,
            "https://fastgpt.run/api/openapi/v1/chat/completions",
        ),
        (
            T.DeepSeek,
            "https://api.deepseek.com/v1",
            Mode.CHAT,
            "https://api.deepseek.com/v1/chat/completions",
        ),
        (
            T.Doubao,
            "https://ark.cn-beijing.volces.com",
            Mode.CHAT,
            "https://ark.cn-beijing.volces.com/api/v3/chat/completions",
        ),
        (
            T.Doubao,
            "https://ark.cn-beijing.volces.com",
            Mode.EMBEDDINGS,
            "https://ark.cn-beijing.volces.com/api/v3/embeddings",
        ),
        (
            T.Doubao,
            "https://ark.cn-beijing.volces.com/api/v3",
            Mode.CHAT,
            "https://ark.cn-beijing.volces.com/api/v3/chat/completions",
        ),
        (
            T.Minimax,
            "https://api.minimax.chat",
            Mode.CHAT,
            "https://api.minimax.chat/v1/text/chatcompletion_v2",
        ),
        (
            T.Novita,
            "https://api.novita.ai/v3/openai",
            Mode.CHAT,
            "https://api.novita.ai/v3/openai/chat/completions",
        ),
        (
            T.BaiduV2,
            "https://qianfan.baidubce.com",
            Mode.CHAT,
            "https://qianfan.baidubce.com/v2/chat/completions",
        ),
        (
            T.AliBailian,
            "https://dashscope.aliyuncs.com",
            Mode.EMBEDDINGS,
            "https://dashscope.aliyuncs.com/compatible-mode/v1/embeddings",
        ),
        (
            T.XunfeiV2,
            "https://spark-api-open.xf-yun.com",
            Mode.CHAT,
            "https://spark-api-open.xf-yun.com/v1/chat/completions",
        ),
        (
            T.OpenAICompatible,
            "https://llm.example/api/v2",
            Mode.CHAT,
            "https://llm.example/api/v2/chat/completions",
        ),
        (
            T.GeminiOpenAICompatible,
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            Mode.EMBEDDINGS,
            "https://generativelanguage.googleapis.com/v1beta/openai/embeddings",
        ),
        (
            T.SiliconFlow,
            "https://api.siliconflow.cn",
            Mode.SPEECH,
            "https://api.siliconflow.cn/v1/audio/speech",
        ),
    ],
)
def test_request_url_rules(channel_type: ChannelType, base: str, mode: Mode, url: str) -> None:
    assert request_url(channel_type, base, mode) == url


@pytest.mark.parametrize(
    ("channel_type", "mode"),
    [
        (T.Minimax, Mode.EMBEDDINGS),
        (T.BaiduV2, Mode.IMAGES),
        (T.Doubao, Mode.SPEECH),
        (T.AliBailian, Mode.MODERATIONS),
    ],
)
def test_modes_a_type_does_not_serve_are_refused(channel_type: ChannelType, mode: Mode) -> None:
    adaptor = OpenAIAdaptor(channel_type)
    assert mode not in adaptor.modes
    assert Mode.CHAT in adaptor.modes
    request = RelayRequest(mode, "m", {"model": "m", "input": "x"})
    channel = ChannelInfo(id=1, type=channel_type, key="k", base_url="https://x.example")
    with pytest.raises(UnsupportedModeError):
        adaptor.build_request(channel, request)


def test_a_channel_without_base_url_is_refused() -> None:
    channel = ChannelInfo(id=1, type=T.OpenAICompatible, key="k", base_url="")
    with pytest.raises(InvalidRequestError, match="base URL"):
        OpenAIAdaptor(T.OpenAICompatible).build_request(channel, chat())


def test_non_openai_types_are_refused() -> None:
    with pytest.raises(UnsupportedChannelTypeError):
        OpenAIAdaptor(T.Anthropic)


async def test_versioned_base_and_openrouter_headers_over_http(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    compatible = channel_for(fake, T.OpenAICompatible, base=fake.url + "/v1")
    await complete(OpenAIAdaptor(T.OpenAICompatible), http, compatible, chat())
    assert fake.last_request.path == "/v1/chat/completions"
    deepseek = channel_for(fake, T.DeepSeek, base=fake.url + "/v1/")
    await complete(OpenAIAdaptor(T.DeepSeek), http, deepseek, chat())
    assert fake.last_request.path == "/v1/chat/completions"
    router = channel_for(fake, T.OpenRouter, key="sk-or")
    await complete(OpenAIAdaptor(T.OpenRouter), http, router, chat())
    headers = fake.last_request.headers
    assert headers["authorization"] == "Bearer sk-or"
    assert headers["http-referer"].startswith("https://")
    assert headers["x-title"] == "One API"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "type_", "code"),
    [
        ("invalid_request", 400, "invalid_request_error", None),
        ("context_length", 400, "invalid_request_error", "context_length_exceeded"),
        ("rate_limit", 429, "requests", "rate_limit_exceeded"),
        ("insufficient_quota", 429, "insufficient_quota", "insufficient_quota"),
        ("server_error", 500, "server_error", None),
        ("unavailable", 503, "server_error", None),
    ],
)
async def test_openai_errors_are_mapped(
    fake: FakeUpstream,
    http: aiohttp.ClientSession,
    kind: Any,
    status: int,
    type_: str,
    code: str | None,
) -> None:
    fake.push(error(kind, "what went wrong"))
    adaptor = OpenAIAdaptor()
    got_status, body = await complete(adaptor, http, channel_for(fake), chat())
    assert got_status == status
    mapped = adaptor.read_error(got_status, body)
    assert (mapped.status_code, mapped.message, mapped.type, mapped.code) == (
        status,
        "what went wrong",
        type_,
        code,
    )


async def test_bad_key_is_a_401_with_its_code(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("openai", keys=["sk-good"]) as fake:
        adaptor = OpenAIAdaptor()
        status, body = await complete(
            adaptor, http, channel_for(fake, key="sk-bad-key-1234"), chat()
        )
    mapped = adaptor.read_error(status, body)
    assert status == 401
    assert mapped.code == "invalid_api_key"
    assert "Incorrect API key" in mapped.message
    assert "sk-bad-key-1234" not in mapped.message  # the upstream masks it


async def test_context_length_param_is_kept(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(error("context_length"))
    adaptor = OpenAIAdaptor()
    status, body = await complete(adaptor, http, channel_for(fake), chat())
    assert adaptor.read_error(status, body).param == "messages"


@pytest.mark.parametrize(
    ("body", "message", "type_", "code"),
    [
        (b'{"message": "quota used up", "code": 1008}', "quota used up", "upstream_error", 1008),
        (b'{"msg": "invalid token", "code": "40001"}', "invalid token", "upstream_error", "40001"),
        (b'{"err": "no channel"}', "no channel", "upstream_error", None),
        (b'"quota exceeded"', "quota exceeded", "upstream_error", None),
        (
            b'{"error_msg": "Open api qps limit", "error_code": 18}',
            "Open api qps limit",
            "upstream_error",
            18,
        ),
        (b'{"error": "model not loaded"}', "model not loaded", "upstream_error", None),
        (b'{"detail": "Not Found"}', "Not Found", "upstream_error", None),
        (
            b'{"detail": [{"loc": ["body", "model"], "msg": "field required", "type": "missing"}]}',
            "field required",
            "upstream_error",
            None,
        ),
        (
            b'{"base_resp": {"status_code": 1004, "status_msg": "login fail"}}',
            "login fail",
            "upstream_error",
            1004,
        ),
        (
            b'[{"error": {"code": 429, "message": "Resource exhausted", "status": "EXHAUSTED"}}]',
            "Resource exhausted",
            "upstream_error",
            429,
        ),
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "Overloaded",
            "overloaded_error",
            None,
        ),
    ],
)
def test_odd_error_shapes(body: bytes, message: str, type_: str, code: str | int | None) -> None:
    mapped = OpenAIAdaptor().read_error(418, body)
    assert (mapped.status_code, mapped.message, mapped.type, mapped.code) == (
        418,
        message,
        type_,
        code,
    )


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            502,
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "bad response status code 502",
        ),
        (504, b"<!DOCTYPE html>\n<html>timeout</html>", "bad response status code 504"),
        (500, b"", "bad response status code 500"),
        (503, b"   \n", "bad response status code 503"),
        (404, b"404 page not found\n", "bad response status code 404: 404 page not found"),
        (500, b'{"unexpected": true}', "bad response status code 500"),
    ],
)
def test_bodies_without_an_error_message(status: int, body: bytes, message: str) -> None:
    mapped = OpenAIAdaptor().read_error(status, body)
    assert mapped.message == message
    assert mapped.status_code == status
    assert mapped.type == "upstream_error"
    assert mapped.code == "bad_response_status_code"


async def test_unknown_path_error_from_the_upstream(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("openai") as fake:
        # a FastGPT-style base pointing at the fake gives it a path it does not know
        channel = channel_for(fake, T.FastGPT, base=fake.url + "/api/openapi")
        adaptor = OpenAIAdaptor(T.FastGPT)
        status, body = await complete(adaptor, http, channel, chat())
    mapped = adaptor.read_error(status, body)
    assert status == 404
    assert mapped.message == "Invalid URL (POST /api/openapi/v1/chat/completions)"
    assert mapped.type == "invalid_request_error"


# --- balances ---------------------------------------------------------------------------------


async def fetch_all(
    http: aiohttp.ClientSession, adaptor: OpenAIAdaptor, channel: ChannelInfo
) -> list[bytes]:
    bodies = []
    for described in adaptor.balance_requests(channel):
        async with http.request(described.method, described.url, headers=described.headers) as r:
            assert r.status == 200, await r.text()
            bodies.append(await r.read())
    return bodies


@pytest.mark.parametrize("channel_type", [T.OpenAI, T.Custom])
async def test_openai_style_balance(http: aiohttp.ClientSession, channel_type: ChannelType) -> None:
    billing = Billing(hard_limit_usd=120.0, used_usd=20.25)
    async with FakeUpstream("openai", billing=billing) as fake:
        adaptor = OpenAIAdaptor(channel_type)
        before = dt.datetime.now(dt.UTC).date()
        bodies = await fetch_all(http, adaptor, channel_for(fake, channel_type, key="sk-bal"))
        after = dt.datetime.now(dt.UTC).date()
        subscription, usage = fake.requests
    assert adaptor.read_balance(bodies) == pytest.approx(120.0 - 20.25)
    assert subscription.path == "/v1/dashboard/billing/subscription"
    assert usage.path == "/v1/dashboard/billing/usage"
    assert usage.headers["authorization"] == "Bearer sk-bal"
    assert usage.query["end_date"] in (before.isoformat(), after.isoformat())
    assert (
        usage.query["start_date"]
        == dt.date.fromisoformat(usage.query["end_date"]).replace(day=1).isoformat()
    )


async def test_balance_with_a_base_ending_in_v1(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("openai") as fake:
        adaptor = OpenAIAdaptor(T.Custom)
        bodies = await fetch_all(http, adaptor, channel_for(fake, T.Custom, base=fake.url + "/v1"))
        assert [r.path for r in fake.requests] == [
            "/v1/dashboard/billing/subscription",
            "/v1/dashboard/billing/usage",
        ]
    assert adaptor.read_balance(bodies) == pytest.approx(100.0 - 12.5)


def channel_of(channel_type: ChannelType, base: str = "") -> ChannelInfo:
    return ChannelInfo(
        id=1, type=channel_type, key="sk-k/1", base_url=base or default_base_url(channel_type)
    )


@pytest.mark.parametrize(
    ("channel_type", "url", "headers", "sample", "balance"),
    [
        (
            T.DeepSeek,
            "https://api.deepseek.com/user/balance",
            {"Authorization": "Bearer sk-k/1"},
            {
                "is_available": True,
                "balance_infos": [
                    {
                        "currency": "CNY",
                        "total_balance": "110.00",
                        "granted_balance": "10.00",
                        "topped_up_balance": "100.00",
                    },
                ],
            },
            110.0,
        ),
        (
            T.OpenRouter,
            "https://openrouter.ai/api/v1/credits",
            {"Authorization": "Bearer sk-k/1"},
            {"data": {"total_credits": 50.0, "total_usage": 12.75}},
            37.25,
        ),
        (
            T.SiliconFlow,
            "https://api.siliconflow.cn/v1/user/info",
            {"Authorization": "Bearer sk-k/1"},
            {
                "code": 20000,
                "message": "OK",
                "status": True,
                "data": {
                    "id": "u1",
                    "balance": "0.88",
                    "chargeBalance": "88.00",
                    "totalBalance": "88.88",
                    "status": "normal",
                },
            },
            88.88,
        ),
        (
            T.AIProxy,
            "https://aiproxy.io/api/report/getUserOverview",
            {"Api-Key": "sk-k/1"},
            {"success": True, "message": "", "error_code": 0, "data": {"totalPoints": 42.5}},
            42.5,
        ),
        (
            T.API2GPT,
            "https://api.api2gpt.com/dashboard/billing/credit_grants",
            {"Authorization": "Bearer sk-k/1"},
            {
                "object": "credit_summary",
                "total_granted": 10,
                "total_used": 4,
                "total_remaining": 6,
            },
            6.0,
        ),
        (
            T.AIGC2D,
            "https://api.aigc2d.com/dashboard/billing/credit_grants",
            {"Authorization": "Bearer sk-k/1"},
            {
                "object": "credit_summary",
                "total_available": 7.5,
                "total_granted": 10,
                "total_used": 2.5,
            },
            7.5,
        ),
        (
            T.CloseAI,
            "https://api.closeai-proxy.xyz/dashboard/billing/credit_grants",
            {"Authorization": "Bearer sk-k/1"},
            {
                "object": "credit_summary",
                "total_available": 3.25,
                "total_granted": 5,
                "total_used": 1.75,
            },
            3.25,
        ),
        (
            T.OpenAISB,
            "https://api.openai-sb.com/sb-api/user/status?api_key=sk-k%2F1",
            {"Authorization": "Bearer sk-k/1"},
            {"msg": "ok", "data": {"credit": "19.5"}},
            19.5,
        ),
    ],
)
def test_provider_balance_apis(
    channel_type: ChannelType,
    url: str,
    headers: dict[str, str],
    sample: dict[str, Any],
    balance: float,
) -> None:
    adaptor = OpenAIAdaptor(channel_type)
    (described,) = adaptor.balance_requests(channel_of(channel_type))
    assert (described.method, described.url, described.headers) == ("GET", url, headers)
    assert adaptor.read_balance([orjson.dumps(sample)]) == pytest.approx(balance)


def test_deepseek_prefers_a_usd_balance() -> None:
    sample = {
        "balance_infos": [
            {"currency": "CNY", "total_balance": "70.00"},
            {"currency": "USD", "total_balance": "9.80"},
        ]
    }
    assert OpenAIAdaptor(T.DeepSeek).read_balance([orjson.dumps(sample)]) == pytest.approx(9.8)


def test_deepseek_balance_at_a_custom_base() -> None:
    (described,) = OpenAIAdaptor(T.DeepSeek).balance_requests(
        channel_of(T.DeepSeek, "https://ds.proxy.example/v1")
    )
    assert described.url == "https://ds.proxy.example/user/balance"


@pytest.mark.parametrize(
    ("channel_type", "sample", "message"),
    [
        (T.SiliconFlow, {"code": 30001, "message": "invalid key", "status": False}, "invalid key"),
        (T.AIProxy, {"success": False, "message": "bad key", "error_code": 401}, "bad key"),
        (T.OpenAISB, {"msg": "key not found", "data": None}, "key not found"),
        (T.DeepSeek, {"balance_infos": []}, "no USD or CNY"),
        (T.OpenRouter, {"error": {"message": "No auth credentials found", "code": 401}}, "No auth"),
        (T.API2GPT, {"object": "credit_summary"}, "total_remaining"),
    ],
)
def test_unreadable_balance_answers(
    channel_type: ChannelType, sample: dict[str, Any], message: str
) -> None:
    with pytest.raises(BalanceReadError, match=message):
        OpenAIAdaptor(channel_type).read_balance([orjson.dumps(sample)])


def test_balance_answer_that_is_not_json() -> None:
    with pytest.raises(BalanceReadError, match="not JSON"):
        OpenAIAdaptor(T.OpenRouter).read_balance([b"<html></html>"])
    with pytest.raises(BalanceReadError, match="expected 2"):
        OpenAIAdaptor(T.OpenAI).read_balance([b"{}"])


@pytest.mark.parametrize("channel_type", [T.Groq, T.Moonshot, T.Mistral, T.XAI])
def test_types_without_a_balance_api(channel_type: ChannelType) -> None:
    adaptor = OpenAIAdaptor(channel_type)
    with pytest.raises(BalanceUnsupportedError):
        adaptor.balance_requests(channel_of(channel_type))
    with pytest.raises(BalanceUnsupportedError):
        adaptor.read_balance([b"{}"])


# --- models -----------------------------------------------------------------------------------


def test_default_models_per_type() -> None:
    assert "gpt-4o-mini" in OpenAIAdaptor().default_models()
    assert OpenAIAdaptor(T.DeepSeek).default_models() == ("deepseek-chat", "deepseek-reasoner")
    assert "moonshot-v1-8k" in OpenAIAdaptor(T.Moonshot).default_models()
    assert OpenAIAdaptor(T.API2D).default_models() == OpenAIAdaptor().default_models()
    for channel_type in OPENAI_COMPATIBLE_TYPES:
        models = OpenAIAdaptor(channel_type).default_models()
        assert models
        assert len(set(models)) == len(models)
