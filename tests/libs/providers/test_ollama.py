"""OllamaAdaptor against the fake Ollama upstream: real HTTP through `adaptor.open`."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from libs.providers.base import ChannelInfo, Mode, RelayRequest, StreamDecoder
from libs.providers.channel_types import ChannelType
from libs.providers.errors import InvalidRequestError, UnsupportedModeError
from libs.providers.ollama import OllamaAdaptor
from tests.fakes import FakeUpstream, dropped, embedding_vector, error, mid_stream_error, no_usage
from tests.fakes.core import tiny_png

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are local"},
    {"role": "user", "content": "count one two three"},
]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("ollama") as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel_for(fake: FakeUpstream, key: str = "") -> ChannelInfo:
    return ChannelInfo(id=30, type=ChannelType.Ollama, key=key, base_url=fake.url)


def chat(
    extra: dict[str, Any] | None = None,
    *,
    stream: bool = False,
    messages: list[dict[str, Any]] | None = None,
) -> RelayRequest:
    body: dict[str, Any] = {"model": "llama3.2", "messages": messages or MESSAGES, **(extra or {})}
    if stream:
        body["stream"] = True
    return RelayRequest(Mode.CHAT, "llama3.2", body, stream=stream, raw=orjson.dumps(body))


async def complete(
    http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[int, bytes]:
    response = await OllamaAdaptor().open(http, channel, request)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def stream_through(
    http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[StreamDecoder, list[dict[str, Any]], bool]:
    adaptor = OllamaAdaptor()
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


async def test_chat_request_and_answer(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    request = chat({"temperature": 0.3, "top_p": 0.9, "seed": 7, "max_tokens": 100, "stop": "END"})
    status, body = await complete(http, channel_for(fake), request)
    assert status == 200
    sent = fake.last_request
    assert sent.path == "/api/chat"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are local"},
            {"role": "user", "content": "count one two three"},
        ],
        "stream": False,
        "options": {
            "temperature": 0.3,
            "top_p": 0.9,
            "seed": 7,
            "num_predict": 100,
            "stop": ["END"],
        },
    }
    out, usage = OllamaAdaptor().read_response(request, body)
    answer = json.loads(out)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "llama3.2"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": "count one two three",
    }
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 4)
    assert answer["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_max_tokens_cut_is_finish_reason_length(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat({"max_completion_tokens": 2})
    _, body = await complete(http, channel_for(fake), request)
    assert fake.last_request.json["options"] == {"num_predict": 2}
    out, usage = OllamaAdaptor().read_response(request, body)
    answer = json.loads(out)
    assert answer["choices"][0]["message"]["content"] == "count one"
    assert answer["choices"][0]["finish_reason"] == "length"
    assert usage is not None
    assert usage.completion_tokens == 2


async def test_key_is_sent_when_set(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("ollama", keys=["ol-key"]) as fake:
        status, _ = await complete(http, channel_for(fake, key="ol-key"), chat())
        assert status == 200
        assert fake.last_request.headers["authorization"] == "Bearer ol-key"
        status, body = await complete(http, channel_for(fake, key="nope"), chat())
    assert status == 401
    assert OllamaAdaptor().read_error(status, body).message == "unauthorized"


async def test_images_become_base64(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    png = base64.b64encode(tiny_png()).decode()
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                {"type": "image_url", "image_url": {"url": fake.url + "/__fake__/images/a.png"}},
            ],
        }
    ]
    request = chat(messages=messages)
    status, body = await complete(http, channel_for(fake), request)
    assert status == 200
    sent = fake.last_request.json["messages"][0]
    assert sent == {"role": "user", "content": "what is in these", "images": [png, png]}
    _, usage = OllamaAdaptor().read_response(request, body)
    assert usage is not None
    assert usage.prompt_tokens == 4  # images count nothing


async def test_unreachable_image_is_a_request_error(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    image = {"type": "image_url", "image_url": {"url": fake.url + "/missing.png"}}
    messages = [{"role": "user", "content": [image]}]
    with pytest.raises(InvalidRequestError, match="status 404"):
        await complete(http, channel_for(fake), chat(messages=messages))
    with pytest.raises(InvalidRequestError, match="downloaded first"):
        OllamaAdaptor().build_request(channel_for(fake), chat(messages=messages))


async def test_stream_becomes_openai_chunks_with_a_final_usage_chunk(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    decoder, chunks, cut = await stream_through(http, channel_for(fake), chat(stream=True))
    assert fake.last_request.json["stream"] is True
    assert not cut
    assert len(chunks) == 5  # four pieces, then the done line
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "count"}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    assert decoder.text == "count one two three"
    assert decoder.usage is not None
    assert (decoder.usage.prompt_tokens, decoder.usage.completion_tokens) == (7, 4)


async def test_tool_calls(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    messages = [{"role": "user", "content": "please call tool for Paris"}]
    request = chat({"tools": [WEATHER_TOOL]}, messages=messages)
    _, body = await complete(http, channel_for(fake), request)
    assert fake.last_request.json["tools"] == [WEATHER_TOOL]
    out, usage = OllamaAdaptor().read_response(request, body)
    choice = json.loads(out)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "fake"}
    assert usage is not None
    assert usage.completion_tokens == 1 + len(json.dumps({"city": "fake"}).split())

    streamed = chat({"tools": [WEATHER_TOOL]}, messages=messages, stream=True)
    decoder, chunks, _ = await stream_through(http, channel_for(fake), streamed)
    (stream_call,) = chunks[0]["choices"][0]["delta"]["tool_calls"]
    assert stream_call["index"] == 0
    assert json.loads(stream_call["function"]["arguments"]) == {"city": "fake"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(decoder.text) == {"city": "fake"}


async def test_assistant_tool_calls_and_results_are_sent_back(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
    ]
    status, _ = await complete(http, channel_for(fake), chat(messages=messages))
    assert status == 200
    sent = fake.last_request.json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


async def test_missing_counts_leave_counting_to_the_relay(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(no_usage(), no_usage())
    request = chat()
    _, body = await complete(http, channel_for(fake), request)
    _, usage = OllamaAdaptor().read_response(request, body)
    assert usage is None
    decoder, chunks, _ = await stream_through(http, channel_for(fake), chat(stream=True))
    assert decoder.usage is None
    assert "usage" not in chunks[-1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_mid_stream_error(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    fake.push(mid_stream_error(after=2, message="llama runner crashed"))
    decoder, chunks, _ = await stream_through(http, channel_for(fake), chat(stream=True))
    assert len(chunks) == 2
    assert decoder.error is not None
    assert decoder.error.message == "llama runner crashed"
    assert decoder.usage is None


async def test_dropped_stream_ends_without_usage(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(dropped(after=2))
    decoder, chunks, cut = await stream_through(http, channel_for(fake), chat(stream=True))
    assert cut
    assert len(chunks) == 2
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)
    assert decoder.usage is None
    assert decoder.text == "count one"


async def test_embeddings(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    body = {"model": "nomic-embed-text", "input": ["one two", "three"]}
    request = RelayRequest(Mode.EMBEDDINGS, "nomic-embed-text", body)
    status, answer = await complete(http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == "/api/embed"
    assert fake.last_request.json == {"model": "nomic-embed-text", "input": ["one two", "three"]}
    out, usage = OllamaAdaptor().read_response(request, answer)
    converted = json.loads(out)
    assert converted["object"] == "list"
    assert [item["index"] for item in converted["data"]] == [0, 1]
    assert converted["data"][0]["embedding"] == pytest.approx(embedding_vector("one two"))
    assert converted["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 0)


async def test_embeddings_as_base64(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    body = {"model": "nomic-embed-text", "input": "hello", "encoding_format": "base64"}
    request = RelayRequest(Mode.EMBEDDINGS, "nomic-embed-text", body)
    _, answer = await complete(http, channel_for(fake), request)
    out, _ = OllamaAdaptor().read_response(request, answer)
    raw = base64.b64decode(json.loads(out)["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == embedding_vector("hello")


async def test_errors(http: aiohttp.ClientSession) -> None:
    async with FakeUpstream("ollama", models=["llama3.2"]) as fake:
        adaptor = OllamaAdaptor()
        request = RelayRequest(Mode.CHAT, "qwen9", {"model": "qwen9", "messages": MESSAGES})
        status, body = await complete(http, channel_for(fake), request)
        mapped = adaptor.read_error(status, body)
        assert (status, mapped.message) == (404, 'model "qwen9" not found, try pulling it first')
        fake.push(error("unavailable"))
        status, body = await complete(http, channel_for(fake), chat())
        assert status == 503
        assert adaptor.read_error(status, body).message.startswith("server busy")
    plain = adaptor.read_error(404, b"404 page not found")
    assert plain.message == "bad response status code 404: 404 page not found"


def test_modes() -> None:
    adaptor = OllamaAdaptor()
    assert adaptor.modes == frozenset({Mode.CHAT, Mode.EMBEDDINGS})
    channel = ChannelInfo(id=1, type=ChannelType.Ollama, key="", base_url="http://localhost:11434")
    with pytest.raises(UnsupportedModeError):
        adaptor.build_request(channel, RelayRequest(Mode.IMAGES, "m", {"prompt": "x"}))
    assert adaptor.default_models()
