"""Scripted behaviours shared by every fake: errors, slowness, cut streams, rules, modes."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes import (
    FakeProcess,
    FakeUpstream,
    Outcome,
    dropped,
    error,
    keepalive,
    mid_stream_error,
    no_usage,
    reply,
    slow,
)

TEXT = "one two three four five"
CHAT: Any = [{"role": "user", "content": TEXT}]


def client(fake: FakeUpstream, key: str = "sk-test", **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=0, **options)


async def raw_chat(fake: FakeUpstream, body: dict[str, Any]) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as http,
        http.post(fake.base_url + "/chat/completions", json=body) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_delay_before_headers_trips_a_client_timeout(openai_fake: FakeUpstream) -> None:
    openai_fake.push(slow(delay=2.0))
    with pytest.raises(openai.APITimeoutError):
        await client(openai_fake, timeout=0.2).chat.completions.create(
            model="gpt-4o", messages=CHAT
        )
    # the next request is not delayed
    done = await client(openai_fake, timeout=2).chat.completions.create(
        model="gpt-4o", messages=CHAT
    )
    assert done.choices[0].message.content == TEXT


async def test_slow_chunks_still_arrive_whole(openai_fake: FakeUpstream) -> None:
    openai_fake.push(slow(chunk_delay=0.01))
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == TEXT


async def test_dropped_stream_breaks_the_sdk_iteration(openai_fake: FakeUpstream) -> None:
    openai_fake.push(dropped(after=3))
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    received: list[str] = []

    async def consume() -> None:
        async for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIConnectionError):
        await consume()
    assert "".join(received) == "one two"  # role chunk, "one", " two", then the cut


async def test_dropped_before_a_non_stream_response(openai_fake: FakeUpstream) -> None:
    openai_fake.push(dropped())
    with pytest.raises(openai.APIConnectionError):
        await client(openai_fake).chat.completions.create(model="gpt-4o", messages=CHAT)
    again = await client(openai_fake).chat.completions.create(model="gpt-4o", messages=CHAT)
    assert again.choices[0].message.content == TEXT


async def test_dropped_stream_seen_raw(openai_fake: FakeUpstream) -> None:
    openai_fake.push(dropped(after=2))
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as http,
        http.post(
            openai_fake.base_url + "/chat/completions",
            json={"model": "m", "messages": CHAT, "stream": True},
        ) as resp,
    ):
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_stream_without_usage_even_when_asked(openai_fake: FakeUpstream) -> None:
    openai_fake.push(no_usage())
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


async def test_json_error_on_a_stream_request(openai_fake: FakeUpstream) -> None:
    openai_fake.push(error("rate_limit"), error("server_error"))
    with pytest.raises(openai.RateLimitError):
        await client(openai_fake).chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True
        )
    status, content_type, raw = await raw_chat(
        openai_fake, {"model": "m", "messages": CHAT, "stream": True}
    )
    assert status == 500
    assert content_type.startswith("application/json")
    assert json.loads(raw)["error"]["type"] == "server_error"


async def test_error_body_with_success_status(openai_fake: FakeUpstream) -> None:
    openai_fake.push(error("server_error", "upstream broke", status=200))
    status, _, raw = await raw_chat(openai_fake, {"model": "m", "messages": CHAT, "stream": True})
    assert status == 200
    assert json.loads(raw)["error"]["message"] == "upstream broke"


async def test_mid_stream_error_in_openai_stream(openai_fake: FakeUpstream) -> None:
    openai_fake.push(mid_stream_error(after=2, message="model crashed"))
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True
    )
    with pytest.raises(openai.APIError, match="model crashed"):
        async for _ in stream:
            pass


async def test_keepalive_comments_before_data(openai_fake: FakeUpstream) -> None:
    openai_fake.push(keepalive(2), keepalive(2))
    _, _, raw = await raw_chat(openai_fake, {"model": "m", "messages": CHAT, "stream": True})
    assert raw.startswith(b": keep-alive\n\n: keep-alive\n\ndata: {")
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o", messages=CHAT, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == TEXT


async def test_rules_by_key_model_and_times(openai_fake: FakeUpstream) -> None:
    openai_fake.add_rule(error("server_error"), key="sk-broken")
    openai_fake.add_rule(reply("from the mini rule"), model="gpt-4o-mini", times=2)
    with pytest.raises(openai.InternalServerError):
        await client(openai_fake, "sk-broken").chat.completions.create(
            model="gpt-4o", messages=CHAT
        )
    healthy = client(openai_fake, "sk-healthy")
    answers = [
        (await healthy.chat.completions.create(model="gpt-4o-mini", messages=CHAT))
        .choices[0]
        .message.content
        for _ in range(3)
    ]
    assert answers == ["from the mini rule", "from the mini rule", TEXT]
    assert len(openai_fake.state.rules) == 1  # the key rule stays


async def test_push_is_first_in_first_out_and_combines(openai_fake: FakeUpstream) -> None:
    openai_fake.push(reply("first"), reply("second") | no_usage())
    api = client(openai_fake)
    first = await api.chat.completions.create(model="m", messages=CHAT)
    second = await api.chat.completions.create(model="m", messages=CHAT)
    assert first.choices[0].message.content == "first"
    assert first.usage is not None
    assert second.choices[0].message.content == "second"
    assert second.usage is None


async def test_recording_and_waiting(openai_fake: FakeUpstream) -> None:
    async def later() -> None:
        await asyncio.sleep(0.01)
        await client(openai_fake).chat.completions.create(
            model="m", messages=CHAT, extra_headers={"X-Trace": "t-1"}, extra_query={"q": "1"}
        )

    task = asyncio.create_task(later())
    (recorded,) = await openai_fake.wait_for_requests(1)
    await task
    assert recorded.method == "POST"
    assert recorded.query == {"q": "1"}
    assert recorded.headers["x-trace"] == "t-1"
    assert json.loads(recorded.raw) == recorded.json
    openai_fake.reset()
    assert openai_fake.requests == []


async def test_fast_mode_serves_valid_answers_without_recording() -> None:
    async with FakeUpstream("openai", fast=True) as fake:
        api = client(fake)
        for _ in range(3):
            result = await api.chat.completions.create(model="gpt-4o", messages=CHAT)
            assert result.choices[0].message.content == fake.state.fast_text
        stream = await api.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == len(fake.state.fast_text.split())
        assert fake.requests == []
        assert fake.state.request_count == 4
        fake.push(error("rate_limit"))  # scripted outcomes still apply in fast mode
        with pytest.raises(openai.RateLimitError):
            await api.chat.completions.create(model="gpt-4o", messages=CHAT)


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "ollama", "azure"])
async def test_fast_mode_for_every_chat_endpoint(provider: str) -> None:
    async with FakeUpstream(provider, fast=True) as fake, aiohttp.ClientSession() as http:
        path, body, headers = {
            "anthropic": (
                "/v1/messages",
                {"model": "m", "max_tokens": 50, "messages": CHAT},
                {"x-api-key": "k", "anthropic-version": "2023-06-01"},
            ),
            "gemini": (
                "/v1beta/models/g:generateContent",
                {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                {"x-goog-api-key": "k"},
            ),
            "ollama": ("/api/chat", {"model": "m", "stream": False, "messages": CHAT}, {}),
            "azure": (
                "/openai/deployments/d/chat/completions?api-version=2024-10-21",
                {"messages": CHAT},
                {"api-key": "k"},
            ),
        }[provider]
        for _ in range(2):
            async with http.post(fake.url + path, json=body, headers=headers) as resp:
                assert resp.status == 200
                assert fake.state.fast_text.split()[0] in await resp.text()


def test_separate_process_with_control_api() -> None:
    with FakeProcess("anthropic", keys=["sk-ant-proc"]) as fake:
        assert fake.health()["provider"] == "anthropic"
        api = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-proc", max_retries=0)
        fake.push(error("overloaded") | Outcome(delay=0.01))
        with pytest.raises(anthropic.OverloadedError):
            api.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        answer = api.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "over the wire"}]
        )
        assert answer.content[0].type == "text"
        assert answer.content[0].text == "over the wire"
        recorded = fake.requests()
        assert [r["body"]["messages"][0]["content"] for r in recorded] == ["x", "over the wire"]
        fake.reset()
        assert fake.requests() == []
        garbled_request = urllib.request.Request(  # noqa: S310 (the loopback fake)
            fake.url + "/v1/messages",
            data=b"{not json",
            headers={"x-api-key": "sk-ant-proc", "content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as rejected:
            urllib.request.urlopen(garbled_request, timeout=10)  # noqa: S310
        assert rejected.value.code == 400
        (garbled,) = fake.requests()
        assert (garbled["body"], garbled["raw"]) == (None, "{not json")
