"""The Gemini adaptor against the fake Gemini API, through `adaptor.open`.

Token counts follow the fake's rule (tests/fakes/README.md): a token is a whitespace-separated
word; promptTokenCount = words of the system instruction and every content text (function
responses as `json.dumps` of their response); candidatesTokenCount = words of the reply, or
1 + the words of the JSON arguments for a function call; thoughts only when scripted.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from libs.providers.base import (
    ChannelInfo,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    Usage,
)
from libs.providers.errors import InvalidRequestError, UnsupportedModeError
from libs.providers.gemini import HARM_CATEGORIES, GeminiAdaptor, clean_schema
from tests.fakes import (
    FakeUpstream,
    content_filtered,
    dropped,
    embedding_vector,
    error,
    mid_stream_error,
    no_usage,
    reply,
)
from tests.fakes.core import tiny_png

MODEL = "gemini-2.5-flash"
KEY = "gemini-test-key"
PNG_B64 = base64.b64encode(tiny_png()).decode()
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {"city": {"type": "string", "title": "City"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("gemini") as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel(fake: FakeUpstream, *, key: str = KEY, other: str = "", **config: Any) -> ChannelInfo:
    return ChannelInfo(id=2, type=24, key=key, base_url=fake.url, config=config, other=other)


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": list(messages), **params}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def exchange(
    http: aiohttp.ClientSession,
    info: ChannelInfo,
    request: RelayRequest,
    adaptor: GeminiAdaptor | None = None,
) -> tuple[dict[str, Any], Usage | None]:
    adaptor = adaptor or GeminiAdaptor()
    response = await adaptor.open(http, info, request)
    try:
        raw = await response.read()
    finally:
        response.release()
    if response.status != 200:
        raise adaptor.read_error(response.status, raw)
    converted, usage = adaptor.read_response(request, raw)
    if request.mode is Mode.CHAT:
        ChatCompletion.model_validate_json(converted)
    elif request.body.get("encoding_format") != "base64":  # the SDK decodes base64 itself
        CreateEmbeddingResponse.model_validate_json(converted)
    answer: dict[str, Any] = orjson.loads(converted)
    return answer, usage


async def complete(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    body: dict[str, Any],
    adaptor: GeminiAdaptor | None = None,
    **channel_options: Any,
) -> tuple[dict[str, Any], Usage | None]:
    request = RelayRequest(Mode.CHAT, str(body["model"]), body)
    return await exchange(http, channel(fake, **channel_options), request, adaptor)


async def embed(
    http: aiohttp.ClientSession, fake: FakeUpstream, body: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    request = RelayRequest(Mode.EMBEDDINGS, str(body["model"]), body)
    return await exchange(http, channel(fake), request)


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
    adaptor = GeminiAdaptor()
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
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]
        ),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"sky": "sunny"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        {"role": "developer", "content": "Use metric units."},
        user("and tomorrow?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.2,
        top_p=0.8,
        top_k=20,
        max_tokens=300,
        stop=["END", "STOP"],
        n=2,
        seed=7,
        response_format={"type": "json_object"},
    )
    adaptor = GeminiAdaptor(safety_setting="BLOCK_ONLY_HIGH")
    await complete(http, fake, body, adaptor)

    sent = fake.last_request
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.query == {}  # the key never goes in the URL
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.key == KEY
    wire = sent.json
    assert wire["systemInstruction"] == {"parts": [{"text": "You are terse.\nUse metric units."}]}
    assert [c["role"] for c in wire["contents"]] == ["user", "model", "user"]
    first, model_turn, results = wire["contents"]
    assert first["parts"] == [
        {"text": "first question"},
        {"text": "look at these"},
        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
        {"fileData": {"fileUri": "https://example.com/cat.png", "mimeType": "image/png"}},
    ]
    assert model_turn["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_time", "args": {}}},
    ]
    # tool results are named after the matching call and merged with the next user text
    assert results["parts"] == [
        {
            "functionResponse": {
                "name": "get_weather",
                "response": {"name": "get_weather", "content": {"sky": "sunny"}},
            }
        },
        {
            "functionResponse": {
                "name": "get_time",
                "response": {"name": "get_time", "content": "noon"},
            }
        },
        {"text": "and tomorrow?"},
    ]
    assert wire["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.8,
        "topK": 20,
        "seed": 7,
        "maxOutputTokens": 300,
        "stopSequences": ["END", "STOP"],
        "candidateCount": 2,
        "responseMimeType": "application/json",
    }
    assert wire["safetySettings"] == [
        {"category": category, "threshold": "BLOCK_ONLY_HIGH"} for category in HARM_CATEGORIES
    ]
    assert len(HARM_CATEGORIES) == 4
    assert wire["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "title": "City"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert wire["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
    ],
)
async def test_tool_choice(
    http: aiohttp.ClientSession, fake: FakeUpstream, choice: str, expected: dict[str, Any]
) -> None:
    await complete(http, fake, chat(user("hi"), tools=[WEATHER_TOOL], tool_choice=choice))
    assert fake.last_request.json["toolConfig"] == {"functionCallingConfig": expected}


async def test_tool_without_parameters(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    await complete(http, fake, chat(user("hi"), tools=[tool], tool_choice="auto"))
    # Gemini rejects an OBJECT without properties: no `parameters` at all
    assert fake.last_request.json["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


@pytest.mark.parametrize(
    ("model", "body_extra", "options", "adaptor_version", "expected"),
    [
        # One API's rule: current families go to v1beta, the configured default otherwise
        ("gemini-2.5-flash", {}, {}, "v1", "v1beta"),
        ("gemini-1.5-pro", {}, {}, "v1", "v1beta"),
        ("gemini-pro", {}, {}, "v1", "v1"),
        ("gemini-pro", {}, {}, "v1beta", "v1beta"),
        # a system instruction or tools need v1beta in practice
        ("gemini-pro", {"system": True}, {}, "v1", "v1beta"),
        ("gemini-pro", {"tools": [WEATHER_TOOL]}, {}, "v1", "v1beta"),
        # the channel decides first: config api_version, then the `other` field
        ("gemini-2.5-flash", {"system": True}, {"api_version": "v1"}, "v1beta", "v1"),
        ("gemini-pro", {}, {"other": "v1beta"}, "v1", "v1beta"),
        ("gemini-2.5-flash", {}, {"other": "v1"}, "v1beta", "v1"),
    ],
)
async def test_api_version(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    model: str,
    body_extra: dict[str, Any],
    options: dict[str, Any],
    adaptor_version: str,
    expected: str,
) -> None:
    messages = [user("hi")]
    if body_extra.pop("system", False):
        messages.insert(0, {"role": "system", "content": "be kind"})
    body = {"model": model, "messages": messages, **body_extra}
    await complete(http, fake, body, GeminiAdaptor(version=adaptor_version), **options)
    assert fake.last_request.path == f"/{expected}/models/{model}:generateContent"


def test_clean_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Args",
        "type": "object",
        "additionalProperties": False,
        "$defs": {
            "Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"},
        },
        "properties": {
            "city": {"type": "string", "format": "uri", "minLength": 1, "default": "x"},
            "unit": {"$ref": "#/$defs/Unit"},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}], "exclusiveMinimum": 0},
            "tags": {"type": ["array", "null"], "items": {"type": "string", "const": "a"}},
            "when": {"type": "string", "format": "date-time"},
            "mode": {"const": "fast"},
        },
        "required": ["city", "missing"],
        "patternProperties": {"^x": {}},
    }
    assert clean_schema(schema) == {
        "title": "Args",
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "unit"},
            "days": {"type": "integer", "nullable": True},
            "tags": {
                "type": "array",
                "nullable": True,
                "items": {"type": "string", "enum": ["a"]},
            },
            "when": {"type": "string", "format": "date-time"},
            "mode": {"enum": ["fast"]},
        },
        "required": ["city"],
    }
    recursive = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}
    }
    assert clean_schema({**recursive, "$ref": "#/$defs/Node"})["type"] == "object"


def test_modes_and_unsupported_requests() -> None:
    adaptor = GeminiAdaptor()
    assert adaptor.modes == frozenset({Mode.CHAT, Mode.EMBEDDINGS})
    assert "gemini-2.5-flash" in adaptor.default_models()
    info = ChannelInfo(id=2, type=24, key=KEY, base_url="https://generativelanguage.googleapis.com")
    with pytest.raises(UnsupportedModeError):
        adaptor.build_request(info, RelayRequest(Mode.IMAGES, MODEL, {"prompt": "x"}))
    with pytest.raises(InvalidRequestError):  # token arrays cannot be sent to Gemini
        adaptor.build_request(
            info, RelayRequest(Mode.EMBEDDINGS, "gemini-embedding-001", {"input": [[1, 2, 3]]})
        )
    upstream = adaptor.build_request(info, RelayRequest(Mode.CHAT, MODEL, chat(user("hi"))))
    assert upstream.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert KEY not in upstream.url


# --- non-stream answers -----------------------------------------------------------------------


async def test_text_answer_and_usage(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat({"role": "system", "content": "be kind"}, user("hello gemini world"))
    answer, usage = await complete(http, fake, body)
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-fake-response-")
    assert answer["model"] == MODEL
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello gemini world"},
            "finish_reason": "stop",
        }
    ]
    # P = 2 (system) + 3 (user); C = 3
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert usage == Usage(prompt_tokens=5, completion_tokens=3)


async def test_thoughts_and_cache_in_usage(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(reply("short answer", reasoning_tokens=4, cached_tokens=2))
    answer, usage = await complete(http, fake, chat(user("three word prompt")))
    # thoughts are billed as output: completion = 2 candidates + 4 thoughts
    assert usage == Usage(prompt_tokens=3, completion_tokens=6, cached_tokens=2, reasoning_tokens=4)
    assert answer["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 6,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }


async def test_tool_call_answer(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    answer, usage = await complete(
        http, fake, chat(user("please call tool now"), tools=[WEATHER_TOOL])
    )
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"fake"}'}
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 3)


async def test_tool_result_round_trip(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = chat(
        user("call tool please"),
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_x",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_x", "content": "cold and dark"},
        tools=[WEATHER_TOOL],
    )
    answer, usage = await complete(http, fake, body)
    # after a tool result the fake answers with text: json.dumps of the function response
    response = {"name": "get_weather", "content": "cold and dark"}
    echoed = json.dumps(response)
    assert answer["choices"][0]["message"]["content"] == echoed
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert usage is not None
    assert usage.prompt_tokens == 3 + len(echoed.split())


@pytest.mark.parametrize(
    ("outcome", "params", "finish", "content"),
    [
        (None, {"max_tokens": 2}, "length", "one two"),
        (content_filtered("output"), {}, "content_filter", ""),
        (None, {}, "stop", "one two three four"),
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
    answer, _ = await complete(http, fake, chat(user("one two three four"), **params))
    assert answer["choices"][0]["finish_reason"] == finish
    assert answer["choices"][0]["message"]["content"] == content


async def test_blocked_prompt_is_a_content_filter_answer(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(content_filtered("prompt"))
    answer, usage = await complete(http, fake, chat(user("something bad")))
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == ""
    assert choice["message"]["refusal"] == "Gemini blocked the prompt (SAFETY)"
    assert usage == Usage(prompt_tokens=2, completion_tokens=0)


async def test_answer_without_usage(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(no_usage())
    answer, usage = await complete(http, fake, chat(user("a b")))
    assert usage is None  # the relay counts
    assert "usage" not in answer
    assert answer["choices"][0]["message"]["content"] == "a b"


# --- streams ----------------------------------------------------------------------------------


async def test_stream_matches_the_non_stream_answer(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    body = chat({"role": "system", "content": "be kind"}, user("stream these five words please"))
    whole, usage = await complete(http, fake, body)
    streamed = await stream(http, fake, body)

    sent = fake.last_request
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    chunks = streamed.chunks
    assert not streamed.cut
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]) == 1
    assert streamed.content == whole["choices"][0]["message"]["content"]
    assert streamed.decoder.text == streamed.content
    assert streamed.finish_reasons == ["stop"]
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {
        (chunks[0]["id"], chunks[0]["created"], MODEL)
    }
    # every chunk carried a cumulative usageMetadata; only the last one is reported, once
    last = chunks[-1]
    assert last["choices"] == []
    assert streamed.usage_chunks == [last]
    assert (
        last["usage"]
        == whole["usage"]
        == {
            "prompt_tokens": 7,
            "completion_tokens": 5,
            "total_tokens": 12,
        }
    )
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
    [delta] = deltas
    [whole_call] = whole["choices"][0]["message"]["tool_calls"]
    assert delta["index"] == 0
    assert delta["id"].startswith("call_")
    assert delta["function"] == whole_call["function"]
    assert streamed.finish_reasons == ["tool_calls"]
    assert streamed.decoder.text == whole_call["function"]["arguments"]
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


async def test_stream_blocked_prompt(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(content_filtered("prompt"))
    streamed = await stream(http, fake, chat(user("something bad")))
    assert streamed.finish_reasons == ["content_filter"]
    assert streamed.chunks[0]["choices"][0]["delta"]["refusal"].startswith("Gemini blocked")
    assert streamed.chunks[-1]["usage"]["prompt_tokens"] == 2
    assert streamed.decoder.error is None


async def test_stream_output_filtered(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(content_filtered("output"))
    streamed = await stream(http, fake, chat(user("something bad")))
    assert streamed.finish_reasons == ["content_filter"]
    assert streamed.content == ""
    assert streamed.chunks[0]["choices"][0]["delta"] == {"role": "assistant"}


async def test_mid_stream_error(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(mid_stream_error(1, "rate_limit"))
    streamed = await stream(http, fake, chat(user("a b c")))
    assert streamed.content == "a"
    failure = streamed.decoder.error
    assert failure is not None
    assert (failure.status_code, failure.type) == (429, "RESOURCE_EXHAUSTED")
    assert streamed.decoder.usage is None
    assert streamed.usage_chunks == []


async def test_dropped_stream_ends_without_usage(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(dropped(after=2))  # two pieces (each with a cumulative usage), then the cut
    streamed = await stream(http, fake, chat(user("a b c d")))
    assert streamed.cut
    assert streamed.content == "a b"
    assert streamed.decoder.text == "a b"
    assert streamed.finish_reasons == []
    assert streamed.decoder.usage is None
    assert streamed.usage_chunks == []


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
    assert streamed.decoder.usage is None
    assert streamed.usage_chunks == []


async def test_stream_with_thoughts(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(reply("x y", reasoning_tokens=3))
    streamed = await stream(http, fake, chat(user("q")))
    assert streamed.content == "x y"
    assert streamed.chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert streamed.chunks[-1]["usage"]["completion_tokens"] == 2 + 3


# --- embeddings -------------------------------------------------------------------------------


async def test_single_embedding(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    answer, usage = await embed(
        http, fake, {"model": "text-embedding-004", "input": "hello world", "dimensions": 8}
    )
    sent = fake.last_request
    assert sent.path == "/v1/models/text-embedding-004:embedContent"
    assert sent.json["content"] == {"parts": [{"text": "hello world"}]}
    assert sent.json["outputDimensionality"] == 8
    assert usage is None  # Gemini reports none: the relay counts
    assert answer["object"] == "list"
    assert answer["model"] == "text-embedding-004"
    assert answer["data"] == [
        {"object": "embedding", "index": 0, "embedding": embedding_vector("hello world", 8)}
    ]


async def test_batch_embeddings(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    texts = ["first text", "second text", "third"]
    answer, usage = await embed(http, fake, {"model": "gemini-embedding-001", "input": texts})
    sent = fake.last_request
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json["requests"] == [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}} for t in texts
    ]
    assert usage is None
    assert [item["index"] for item in answer["data"]] == [0, 1, 2]
    assert [item["embedding"] for item in answer["data"]] == [embedding_vector(t) for t in texts]


async def test_base64_embeddings(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    body = {"model": "gemini-embedding-001", "input": ["a", "b"], "encoding_format": "base64"}
    answer, _ = await embed(http, fake, body)
    for item, text in zip(answer["data"], ["a", "b"], strict=True):
        raw = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == embedding_vector(text)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "type_", "code", "message"),
    [
        # a bad key is Gemini's 400 INVALID_ARGUMENT + API_KEY_INVALID: mapped to a 401
        ("authentication", 401, "authentication_error", "invalid_api_key", "API key not valid"),
        ("permission", 403, "PERMISSION_DENIED", None, "does not have permission"),
        ("not_found", 404, "NOT_FOUND", None, "not found"),
        ("rate_limit", 429, "RESOURCE_EXHAUSTED", None, "Resource has been exhausted"),
        ("insufficient_quota", 429, "RESOURCE_EXHAUSTED", None, "exceeded your current quota"),
        ("invalid_request", 400, "INVALID_ARGUMENT", None, "invalid argument"),
        ("context_length", 400, "INVALID_ARGUMENT", None, "exceeds the maximum number of tokens"),
        ("server_error", 500, "INTERNAL", None, "An internal error has occurred"),
        ("unavailable", 503, "UNAVAILABLE", None, "The model is overloaded"),
        ("overloaded", 503, "UNAVAILABLE", None, "The model is overloaded"),
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
    adaptor = GeminiAdaptor()
    request = RelayRequest(Mode.CHAT, MODEL, chat(user("hi")), stream=streamed)
    response = await adaptor.open(http, channel(fake), request)
    try:
        body = await response.read()
    finally:
        response.release()
    failure = adaptor.read_error(response.status, body)
    assert (failure.status_code, failure.type, failure.code) == (status, type_, code)
    assert message in failure.message
    assert "\n" not in failure.message


async def test_wrong_and_missing_key(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("gemini", keys=["right-key"]) as fake:
        with pytest.raises(UpstreamError) as wrong:
            await complete(http, fake, chat(user("hi")))
        with pytest.raises(UpstreamError) as missing:
            await complete(http, fake, chat(user("hi")), key="")
    assert (wrong.value.status_code, wrong.value.type) == (401, "authentication_error")
    assert wrong.value.code == "invalid_api_key"
    assert KEY not in wrong.value.message
    assert (missing.value.status_code, missing.value.type) == (403, "PERMISSION_DENIED")


async def test_quota_error_keeps_its_reason(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(error("rate_limit", retry_after=7))
    with pytest.raises(UpstreamError) as caught:
        await complete(http, fake, chat(user("hi")))
    assert (caught.value.status_code, caught.value.type) == (429, "RESOURCE_EXHAUSTED")


async def test_error_body_with_success_status(
    http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    fake.push(error("unavailable", status=200))
    with pytest.raises(UpstreamError) as caught:
        await complete(http, fake, chat(user("hi")))
    assert (caught.value.status_code, caught.value.type) == (503, "UNAVAILABLE")


async def test_embedding_error(http: aiohttp.ClientSession, fake: FakeUpstream) -> None:
    fake.push(error("rate_limit"))
    with pytest.raises(UpstreamError) as caught:
        await embed(http, fake, {"model": "text-embedding-004", "input": ["a"]})
    assert (caught.value.status_code, caught.value.type) == (429, "RESOURCE_EXHAUSTED")


@pytest.mark.parametrize(
    ("status", "body", "type_", "expected"),
    [
        (
            502,
            b"<!DOCTYPE html><html><head><title>Error 502 (Server Error)!!1</title></head></html>",
            "INTERNAL",
            "Gemini answered HTTP 502 with an HTML page, not an API error "
            "(Error 502 (Server Error)!!1)",
        ),
        (504, b"", "DEADLINE_EXCEEDED", "Gemini answered HTTP 504 with an empty body"),
        (
            400,
            b'[{"error": {"code": 400, "message": "bad\\nthing", "status": "INVALID_ARGUMENT"}}]',
            "INVALID_ARGUMENT",
            "bad thing",
        ),
    ],
)
def test_error_bodies_of_other_shapes(status: int, body: bytes, type_: str, expected: str) -> None:
    failure = GeminiAdaptor().read_error(status, body)
    assert (failure.status_code, failure.type, failure.message) == (status, type_, expected)
