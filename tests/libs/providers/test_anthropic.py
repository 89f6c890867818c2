"""The Anthropic adaptor against the fake Messages API, through `adaptor.open`.

Token counts follow the fake's rule (tests/fakes/README.md): a token is a whitespace-separated
word; prompt = words of the system prompt and every message text; completion = words of the
reply, or 1 + the words of the JSON arguments (`json.dumps` separators) for a tool call.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from libs.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicAdaptor
from libs.providers.base import ChannelInfo, Mode, RelayRequest, StreamDecoder, UpstreamError
from libs.providers.errors import UnsupportedModeError
from tests.fakes import (
    FakeUpstream,
    content_filtered,
    dropped,
    error,
    keepalive,
    mid_stream_error,
    no_usage,
    reply,
)
from tests.fakes.core import tiny_png

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-test"
PNG_B64 = base64.b64encode(tiny_png()).decode()
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("anthropic") as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel(fake: FakeUpstream, *, key: str = KEY, **config: Any) -> ChannelInfo:
    return ChannelInfo(id=1, type=14, key=key, base_url=fake.url, config=config)


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **params}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def complete(
    http: aiohttp.ClientSession, fake: FakeUpstream, body: dict[str, Any], **config: Any
) -> tuple[dict[str, Any], Any]:
    """A non-stream exchange: the OpenAI answer (validated by the SDK's types) and the usage."""
    adaptor = AnthropicAdaptor()
    request = RelayRequest(Mode.CHAT, MODEL, body)
    response = await adaptor.open(http, channel(fake, **config), request)
    try:
        raw = await response.read()
    finally:
        response.release()
    if response.status != 200:
        raise adaptor.read_error(response.status, raw)
    converted, usage = adaptor.read_response(request, raw)
    ChatCompletion.model_validate_json(converted)
    answer: dict[str, Any] = orjson.loads(converted)
    return answer, usage


@dataclass
class Streamed:
    chunks: list[dict[str, Any]]
    decoder: StreamDecoder
    cut: bool = False
    content: str = field(init=False)

    def __post_init__(self) -> None:
        self.content = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"]
        )

    @property
    def finish_reasons(self) -> list[str]:
        return [
            c["choices"][0]["finish_reason"]
            for c in self.chunks
            if c["choices"] and c["choices"][0]["finish_reason"]
        ]

    @property
    def usage_chunks(self) -> list[dict[str, Any]]:
        return [c for c in self.chunks if c.get("usage")]


async def stream(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    body: dict[str, Any],
    *,
    include_usage: bool = True,
) -> Streamed:
    """A stream exchange, fed line by line to the decoder, then `close()` as the relay does."""
    adaptor = AnthropicAdaptor()
    request = RelayRequest(
        Mode.CHAT, MODEL, {**body, "stream": True}, stream=True, include_usage=include_usage
    )
    decoder = adaptor.stream_decoder(request)
    out: list[bytes] = []
    cut = False
    response = await adaptor.open(http, channel(fake), request)
    try:
        assert response.status == 200
        async for line in response.lines():
            out.extend(decoder.feed(line))
    except aiohttp.ClientPayloadError:
        cut = True
    finally:
        response.release()
    out.extend(decoder.close())
    for chunk in out:
        ChatCompletionChunk.model_validate_json(chunk)
    return Streamed([orjson.loads(c) for c in out], decoder, cut)


# --- request conversion -----------------------------------------------------------------------


async def test_request_conversion(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat(
        {"role": "system", "content": "You are terse."},
        user("first question"),
        user(
            [
                {"type": "text", "text": "look at these"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ]
        ),
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        user("and tomorrow?"),
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        stop="END",
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        user="user-42",
    )
    await complete(http, fake, body, anthropic_beta=["prompt-caching-2024-07-31", "beta-2"])

    sent = fake.last_request
    assert sent.method == "POST"
    assert sent.path == "/v1/messages"
    assert sent.query == {}
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31,beta-2"
    assert sent.headers["content-type"] == "application/json"
    wire = sent.json
    # every system/developer message, wherever it stands, joined into the top-level system
    assert wire["system"] == "You are terse.\nUse metric units."
    assert [m["role"] for m in wire["messages"]] == ["user", "assistant", "user"]
    first, assistant, results = wire["messages"]
    assert first["content"] == [
        {"type": "text", "text": "first question"},
        {"type": "text", "text": "look at these"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert assistant["content"] == [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    # consecutive tool results and the next user text share one user turn, results first
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
        {"type": "text", "text": "and tomorrow?"},
    ]
    assert wire["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert wire["stop_sequences"] == ["END"]
    assert (wire["temperature"], wire["top_p"], wire["top_k"]) == (0.3, 0.9, 40)
    assert wire["metadata"] == {"user_id": "user-42"}
    assert wire["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert wire["tool_choice"] == {"type": "auto"}
    assert "stream" not in wire
    assert wire["model"] == MODEL


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_tool_choice(
    http: aiohttp.ClientSession, fake: FakeUpstream, choice: Any, expected: dict[str, Any]
) -> None:
    await complete(http, fake, chat(user("hi"), tools=[WEATHER_TOOL], tool_choice=choice))
    assert fake.last_request.json["tool_choice"] == expected


async def test_no_parallel_tool_calls(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat(user("hi"), tools=[WEATHER_TOOL], parallel_tool_calls=False)
    await complete(http, fake, body)
    assert fake.last_request.json["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


async def test_tool_choice_without_tools_is_not_sent(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    await complete(http, fake, chat(user("hi"), tool_choice="required"))
    assert "tool_choice" not in fake.last_request.json
    assert "tools" not in fake.last_request.json


@pytest.mark.parametrize(
    ("params", "max_tokens", "stops"),
    [
        ({"max_tokens": 100, "stop": ["A", "  ", "B"]}, 100, ["A", "B"]),
        ({"max_completion_tokens": 77, "max_tokens": 100}, 77, None),
        ({"max_completion_tokens": 55}, 55, None),
    ],
)
async def test_max_tokens_and_stop(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    params: dict[str, Any],
    max_tokens: int,
    stops: list[str] | None,
) -> None:
    await complete(http, fake, chat(user("hi"), **params))
    wire = fake.last_request.json
    assert wire["max_tokens"] == max_tokens
    assert wire.get("stop_sequences") == stops


async def test_consecutive_roles_merge_and_prefill_whitespace(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    body = chat(
        user("one"),
        user(""),  # an empty text block would be rejected by the API
        user([{"type": "text", "text": "two"}]),
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b  \n"},  # a final prefill may not end in whitespace
    )
    await complete(http, fake, body)
    assert fake.last_request.json["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    ]


async def test_base_url_with_version_suffix(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    adaptor = AnthropicAdaptor()
    request = RelayRequest(Mode.CHAT, MODEL, chat(user("hi")))
    info = ChannelInfo(id=1, type=14, key=KEY, base_url=fake.url + "/v1/")
    response = await adaptor.open(http, info, request)
    response.release()
    assert response.status == 200
    assert fake.last_request.path == "/v1/messages"


def test_only_chat_is_served() -> None:
    adaptor = AnthropicAdaptor()
    assert adaptor.modes == frozenset({Mode.CHAT})
    info = ChannelInfo(id=1, type=14, key=KEY, base_url="https://api.anthropic.com")
    with pytest.raises(UnsupportedModeError):
        adaptor.build_request(info, RelayRequest(Mode.EMBEDDINGS, MODEL, {"input": "x"}))
    assert MODEL in adaptor.default_models()


# --- non-stream answers -----------------------------------------------------------------------


async def test_text_answer_and_usage(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat({"role": "system", "content": "be brief"}, user("hello there claude"))
    answer, usage = await complete(http, fake, body)
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-msg_")
    assert answer["model"] == MODEL
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello there claude"}
    assert choice["finish_reason"] == "stop"
    # P = 2 (system) + 3 (user); C = 3 (the echo)
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (5, 3, 0)


async def test_cache_tokens_count_into_the_prompt(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(reply("cached answer", cached_tokens=7, cache_creation_tokens=3))
    answer, usage = await complete(http, fake, chat(user("four words of prompt")))
    # input 4 + cache read 7 + cache creation 3; the cache reads are reported as cached
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (14, 7, 2)
    assert answer["usage"] == {
        "prompt_tokens": 14,
        "completion_tokens": 2,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 7},
    }


async def test_tool_call_answer(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    answer, usage = await complete(
        http, fake, chat(user("please call tool now"), tools=[WEATHER_TOOL])
    )
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("toolu_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "fake"}
    # C = 1 (name) + 2 words of '{"city": "fake"}'
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 3)


async def test_thinking_becomes_reasoning_content(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(reply("the answer", reasoning_tokens=3))
    answer, usage = await complete(http, fake, chat(user("think")))
    message = answer["choices"][0]["message"]
    assert message["content"] == "the answer"
    assert message["reasoning_content"] == "thinking thinking thinking"
    assert usage.completion_tokens == 2 + 3  # Anthropic's output tokens include thinking


@pytest.mark.parametrize(
    ("outcome", "params", "finish", "content"),
    [
        (None, {"max_tokens": 2}, "length", "one two"),
        (content_filtered("output"), {}, "content_filter", ""),
        (None, {}, "stop", "one two three four five"),
    ],
)
async def test_finish_reasons(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    outcome: Any,
    params: dict[str, Any],
    finish: str,
    content: str,
) -> None:
    if outcome is not None:
        fake.push(outcome)
    answer, _ = await complete(http, fake, chat(user("one two three four five"), **params))
    assert answer["choices"][0]["finish_reason"] == finish
    assert answer["choices"][0]["message"]["content"] == content


# --- streams ----------------------------------------------------------------------------------


async def test_stream_matches_the_non_stream_answer(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    body = chat({"role": "system", "content": "be brief"}, user("stream these five words please"))
    whole, usage = await complete(http, fake, body)
    fake.push(keepalive(2))  # two extra ping events before the first event
    streamed = await stream(http, fake, body)

    chunks = streamed.chunks
    assert not streamed.cut
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert streamed.content == whole["choices"][0]["message"]["content"]
    assert streamed.decoder.text == streamed.content
    assert streamed.finish_reasons == ["stop"]
    # one id, created and model for the whole stream
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {
        (chunks[0]["id"], chunks[0]["created"], MODEL)
    }
    assert chunks[0]["id"].startswith("chatcmpl-msg_")
    # the last chunk carries the usage and no choice
    last = chunks[-1]
    assert last["choices"] == []
    assert (
        last["usage"]
        == whole["usage"]
        == {
            "prompt_tokens": 7,
            "completion_tokens": 5,
            "total_tokens": 12,
        }
    )
    assert streamed.usage_chunks == [last]
    assert streamed.decoder.usage == usage
    assert streamed.decoder.error is None


async def test_stream_tool_call(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat(user("call tool for Paris"), tools=[WEATHER_TOOL])
    whole, _ = await complete(http, fake, body)
    streamed = await stream(http, fake, body)

    deltas = [
        call
        for c in streamed.chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    first, *rest = deltas
    assert first["index"] == 0
    assert first["id"].startswith("toolu_")
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert rest
    assert all(set(d) == {"index", "function"} and d["index"] == 0 for d in rest)
    arguments = "".join(d["function"]["arguments"] for d in deltas)
    [whole_call] = whole["choices"][0]["message"]["tool_calls"]
    assert json.loads(arguments) == json.loads(whole_call["function"]["arguments"])
    assert streamed.finish_reasons == ["tool_calls"]
    assert streamed.decoder.text == arguments
    assert streamed.chunks[-1]["usage"] == whole["usage"]


@pytest.mark.parametrize("text", ["tell me three things", "call tool for Paris"])
async def test_the_openai_sdk_reassembles_the_stream(
    http: aiohttp.ClientSession, fake: FakeUpstream, text: str
) -> None:
    """The chunks, fed to the `openai` SDK's own stream accumulator, give the non-stream answer."""
    body = chat(user(text), tools=[WEATHER_TOOL])
    whole, _ = await complete(http, fake, body)
    streamed = await stream(http, fake, body)
    state = ChatCompletionStreamState()
    for chunk in streamed.chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    [choice] = final.choices
    expected = whole["choices"][0]
    assert choice.finish_reason == expected["finish_reason"]
    assert choice.message.content == expected["message"]["content"]
    calls = choice.message.tool_calls or []
    expected_calls = expected["message"].get("tool_calls") or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in expected_calls
    ]
    assert final.usage is not None
    assert final.usage.model_dump(exclude_none=True) == whole["usage"]


async def test_stream_thinking(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(reply("done", reasoning_tokens=2))
    streamed = await stream(http, fake, chat(user("think")))
    reasoning = "".join(
        c["choices"][0]["delta"].get("reasoning_content") or ""
        for c in streamed.chunks
        if c["choices"]
    )
    assert reasoning == "thinking thinking"
    assert streamed.content == "done"
    assert streamed.chunks[-1]["usage"]["completion_tokens"] == 1 + 2


async def test_mid_stream_error(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    # frames: message_start, content_block_start, ping, then the error event
    fake.push(mid_stream_error(3, "overloaded"))
    streamed = await stream(http, fake, chat(user("a b c d")))
    error_ = streamed.decoder.error
    assert error_ is not None
    assert (error_.status_code, error_.type, error_.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert streamed.decoder.usage is None
    assert streamed.usage_chunks == []
    assert streamed.finish_reasons == []


async def test_dropped_stream_ends_without_usage(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    # frames: message_start, content_block_start, ping, "a", " b", then the connection closes
    fake.push(dropped(after=5))
    streamed = await stream(http, fake, chat(user("a b c d")))
    assert streamed.cut
    assert streamed.content == "a b"
    assert streamed.decoder.text == "a b"
    assert streamed.decoder.usage is None
    assert streamed.usage_chunks == []
    assert streamed.finish_reasons == []
    assert streamed.decoder.error is None


async def test_usage_chunk_only_when_asked(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    streamed = await stream(http, fake, chat(user("a b c")), include_usage=False)
    assert streamed.content == "a b c"
    assert streamed.finish_reasons == ["stop"]
    assert streamed.usage_chunks == []
    usage = streamed.decoder.usage  # still known, for billing
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 3)


async def test_stream_without_usage(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(no_usage())
    streamed = await stream(http, fake, chat(user("a b c")))
    assert streamed.content == "a b c"
    assert streamed.finish_reasons == ["stop"]
    assert streamed.decoder.usage is None  # the relay counts from `text`
    assert streamed.usage_chunks == []


async def test_stream_finish_length(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    streamed = await stream(http, fake, chat(user("a b c d"), max_tokens=2))
    assert streamed.content == "a b"
    assert streamed.finish_reasons == ["length"]
    assert streamed.chunks[-1]["usage"]["completion_tokens"] == 2


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "type_", "code", "message"),
    [
        ("authentication", 401, "authentication_error", "invalid_api_key", "invalid x-api-key"),
        ("permission", 403, "permission_error", None, "does not have permission"),
        ("not_found", 404, "not_found_error", None, "could not be found"),
        ("rate_limit", 429, "rate_limit_error", None, "exceed the rate limit"),
        ("invalid_request", 400, "invalid_request_error", None, "Invalid request."),
        ("context_length", 400, "invalid_request_error", None, "prompt is too long"),
        ("server_error", 500, "api_error", None, "Internal server error"),
        ("unavailable", 503, "api_error", None, "Service unavailable"),
        ("overloaded", 529, "overloaded_error", None, "Overloaded"),
        (
            "insufficient_quota",
            400,
            "invalid_request_error",
            "insufficient_quota",
            "Your credit balance is too low to access the Anthropic API.",
        ),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_errors(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    kind: Any,
    status: int,
    type_: str,
    code: str | None,
    message: str,
    streamed: bool,
) -> None:
    fake.push(error(kind))
    adaptor = AnthropicAdaptor()
    request = RelayRequest(Mode.CHAT, MODEL, chat(user("hi"), stream=streamed), stream=streamed)
    response = await adaptor.open(http, channel(fake), request)
    try:
        body = await response.read()
    finally:
        response.release()
    assert response.status == status
    failure = adaptor.read_error(response.status, body)
    assert (failure.status_code, failure.type, failure.code) == (status, type_, code)
    assert message in failure.message
    assert "\n" not in failure.message


async def test_wrong_key(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("anthropic", keys=["sk-ant-right"]) as fake:
        with pytest.raises(UpstreamError) as caught:
            await complete(http, fake, chat(user("hi")))
    assert (caught.value.status_code, caught.value.type) == (401, "authentication_error")
    assert caught.value.code == "invalid_api_key"
    assert KEY not in caught.value.message


async def test_blocked_prompt(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(content_filtered("prompt"))
    with pytest.raises(UpstreamError) as caught:
        await complete(http, fake, chat(user("hi")))
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_request_error")
    assert "content filtering" in caught.value.message


async def test_error_body_with_success_status(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(error("overloaded", status=200))
    with pytest.raises(UpstreamError) as caught:
        await complete(http, fake, chat(user("hi")))
    assert (caught.value.status_code, caught.value.type) == (529, "overloaded_error")


@pytest.mark.parametrize(
    ("status", "body", "type_", "expected"),
    [
        (
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "api_error",
            "Anthropic answered HTTP 502 with an HTML page, not an API error (502 Bad Gateway)",
        ),
        (503, b"", "api_error", "Anthropic answered HTTP 503 with an empty body"),
        (429, b"  \n", "rate_limit_error", "Anthropic answered HTTP 429 with an empty body"),
        (
            418,
            b"upstream\nconnect error",
            "upstream_error",
            "Anthropic answered HTTP 418: upstream connect error",
        ),
        (
            401,
            orjson.dumps(
                {
                    "error": {
                        "message": "Incorrect API key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                }
            ),
            "invalid_request_error",
            "Incorrect API key",
        ),
    ],
)
def test_error_bodies_that_are_not_anthropic_errors(
    status: int, body: bytes, type_: str, expected: str
) -> None:
    failure = AnthropicAdaptor().read_error(status, body)
    assert (failure.status_code, failure.type, failure.message) == (status, type_, expected)
