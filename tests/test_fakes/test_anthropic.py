"""The fake Anthropic Messages API as the official ``anthropic`` SDK sees it."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import pytest

from tests.fakes import FakeUpstream, error, keepalive, mid_stream_error, reply

TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    }
]


def client(fake: FakeUpstream, key: str = "sk-ant-test") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key=key, max_retries=0)


async def test_create_with_top_level_system(anthropic_fake: FakeUpstream) -> None:
    message = await client(anthropic_fake).messages.create(
        model="claude-fake-1",
        max_tokens=64,
        system="Answer briefly.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello claude"}]}],
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-fake-1"
    assert message.content[0].type == "text"
    assert message.content[0].text == "hello claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 2)
    assert message.usage.cache_read_input_tokens == 0
    sent = anthropic_fake.last_request
    assert sent.key == "sk-ant-test"  # x-api-key or Authorization: Bearer, both accepted
    assert sent.headers["anthropic-version"]
    assert sent.json["system"] == "Answer briefly."


async def test_stream_events_and_final_usage(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.push(reply("four words streamed here", cached_tokens=3, cache_creation_tokens=2))
    api = client(anthropic_fake)
    kinds: list[str] = []
    async with api.messages.stream(
        model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "four words streamed here"
    assert final.usage.output_tokens == 4
    assert final.usage.cache_read_input_tokens == 3
    assert final.usage.cache_creation_input_tokens == 2
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert kinds.count("text") == 4


async def test_raw_stream_event_order(anthropic_fake: FakeUpstream) -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "stream": True,
        "messages": [{"role": "user", "content": "a b"}],
    }
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(anthropic_fake.url + "/v1/messages", json=body, headers=headers) as resp,
    ):
        raw = (await resp.read()).decode()
    events = [block.split("\n")[0].removeprefix("event: ") for block in raw.strip().split("\n\n")]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_tool_use_non_stream_and_stream(anthropic_fake: FakeUpstream) -> None:
    api = client(anthropic_fake)
    forced = await api.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        tools=TOOLS,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather?"}],
    )
    assert forced.stop_reason == "tool_use"
    block = forced.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"city": "fake", "days": 1}
    assert forced.usage.output_tokens == 1 + 4
    async with api.messages.stream(
        model="claude-fake-1",
        max_tokens=64,
        tools=TOOLS,
        messages=[{"role": "user", "content": "please call tool"}],
    ) as stream:
        final = await stream.get_final_message()
    streamed = final.content[0]
    assert streamed.type == "tool_use"
    assert streamed.input == {"city": "fake", "days": 1}
    assert final.stop_reason == "tool_use"
    answered = await api.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "please call tool"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rainy today"}
                ],
            },
        ],
    )
    assert answered.content[0].type == "text"
    assert answered.content[0].text == "rainy today"


async def test_thinking_blocks(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.push(reply("done", reasoning_tokens=3))
    async with client(anthropic_fake).messages.stream(
        model="claude-fake-1",
        max_tokens=64,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.usage.output_tokens == 1 + 3


async def test_max_tokens_stop_reason(anthropic_fake: FakeUpstream) -> None:
    message = await client(anthropic_fake).messages.create(
        model="m", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.content[0].type == "text"
    assert message.content[0].text == "a b"


@pytest.mark.parametrize(
    ("kind", "exception", "status"),
    [
        ("invalid_request", anthropic.BadRequestError, 400),
        ("authentication", anthropic.AuthenticationError, 401),
        ("permission", anthropic.PermissionDeniedError, 403),
        ("rate_limit", anthropic.RateLimitError, 429),
        ("server_error", anthropic.InternalServerError, 500),
        ("overloaded", anthropic.OverloadedError, 529),
    ],
)
async def test_errors_map_to_sdk_exceptions(
    anthropic_fake: FakeUpstream, kind: Any, exception: type[Exception], status: int
) -> None:
    anthropic_fake.push(error(kind, retry_after=5))
    with pytest.raises(exception) as caught:
        await client(anthropic_fake).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    raised = caught.value
    assert isinstance(raised, anthropic.APIStatusError)
    assert raised.status_code == status
    assert isinstance(raised.body, dict)
    assert raised.body["type"] == "error"
    assert set(raised.body["error"]) == {"type", "message"}
    assert raised.response.headers["retry-after"] == "5"


async def test_credit_balance_too_low(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.push(error("insufficient_quota"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(anthropic_fake).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert "credit balance is too low" in caught.value.message


async def test_mid_stream_error_event(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.push(mid_stream_error(after=3, kind="overloaded"))
    api = client(anthropic_fake)
    received: list[str] = []

    async def consume() -> None:
        async with api.messages.stream(
            model="m", max_tokens=50, messages=[{"role": "user", "content": "a b c d e"}]
        ) as stream:
            async for event in stream:
                received.append(event.type)

    with pytest.raises(anthropic.APIStatusError) as caught:
        await consume()
    assert "overloaded_error" in str(caught.value)
    assert received[0] == "message_start"
    assert "message_stop" not in received


async def test_ping_keepalives(anthropic_fake: FakeUpstream) -> None:
    anthropic_fake.push(keepalive(3))
    async with client(anthropic_fake).messages.stream(
        model="m", max_tokens=50, messages=[{"role": "user", "content": "still works"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == "still works"


async def test_request_validation(anthropic_fake: FakeUpstream) -> None:
    api = client(anthropic_fake)
    with pytest.raises(anthropic.BadRequestError) as system_role:
        await api.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "system", "content": "x"}],
        )
    assert "top-level `system` parameter" in system_role.value.message
    headers = {"x-api-key": "k", "content-type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(anthropic_fake.url + "/v1/messages", json={"model": "m"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"] == (
                "anthropic-version: header is required"
            )
        async with http.post(
            anthropic_fake.url + "/v1/messages",
            json={"model": "m"},
            headers={"anthropic-version": "2023-06-01"},
        ) as resp:
            assert (await resp.json())["error"]["message"] == "messages: Field required"


async def test_key_check_and_count_tokens() -> None:
    async with FakeUpstream("anthropic", keys=["sk-ant-good"]) as fake:
        with pytest.raises(anthropic.AuthenticationError) as bad:
            await client(fake, "sk-ant-bad").messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert bad.value.body == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": "req_fake",
        }
        counted = await client(fake, "sk-ant-good").messages.count_tokens(
            model="m", system="one two", messages=[{"role": "user", "content": "three"}]
        )
        assert counted.input_tokens == 3
        models = await client(fake, "sk-ant-good").models.list()
        assert [m.id for m in models.data]
