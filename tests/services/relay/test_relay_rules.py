"""One API's rules at the relay's door: bad input, authentication, admission and failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from libs.common.db.models import TokenStatus
from libs.common.events import RelayOutcome
from tests.fakes import FakeUpstream, error
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

MODEL = "gpt-4o-mini"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream("openai") as primary, FakeUpstream("openai") as backup:
        yield primary, backup


@pytest.fixture
async def stack(
    upstreams: tuple[FakeUpstream, FakeUpstream],
    sqlite_url: str,
    nats_url: str,
    nats_namespace: str,
) -> AsyncIterator[Stack]:
    primary, backup = upstreams
    channels = [
        SeedChannel("primary", 1, primary.url, [MODEL], priority=10),
        SeedChannel("backup", 1, backup.url, [MODEL], priority=0),
    ]
    async with relay_stack(
        sql_dsn=sqlite_url,
        nats_url=nats_url,
        namespace=nats_namespace,
        channels=channels,
        options={"RetryTimes": "2"},
        relay_max_request_bytes=4096,
    ) as running:
        yield running


async def post(
    stack: Stack,
    key: str,
    body: object = BODY,
    *,
    raw: bytes | None = None,
    path: str = "/chat/completions",
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        if raw is not None:
            return await http.post(path, content=raw, headers={"Authorization": f"Bearer {key}"})
        return await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


def assert_openai_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    request_id = response.headers["x-oneapi-request-id"]
    message = response.json()["error"]["message"]
    assert fragment in message
    assert message.endswith(f"(request id: {request_id})")


async def assert_nothing_billed(stack: Stack) -> None:
    assert await stack.usage_events(1, timeout=1.0) == []


async def test_bad_requests_are_refused_in_openai_format_and_never_billed(stack: Stack) -> None:
    key = stack.root_key
    assert_openai_error(await post(stack, key, raw=b"{not json"), 400, "not valid JSON")
    assert_openai_error(
        await post(stack, key, {"messages": BODY["messages"]}), 400, "model is required"
    )
    assert_openai_error(
        await post(stack, key, {**BODY, "model": "no-such-model"}),
        503,
        "no available channel for model no-such-model in group default",
    )
    assert_openai_error(await post(stack, key, raw=b"x" * 5000), 413, "larger than 4096 bytes")
    assert_openai_error(await post(stack, key, {"model": MODEL}), 400, "messages is required")
    assert_openai_error(
        await post(stack, key, {**BODY, "max_tokens": -1}), 400, "max_tokens is invalid"
    )
    await assert_nothing_billed(stack)


async def test_tokens_are_checked_as_one_api_does(stack: Stack) -> None:
    now = int(time.time())
    disabled = "d" * 48
    expired = "e" * 48
    exhausted = "x" * 48
    subnet = "s" * 48
    limited_models = "m" * 48
    await stack.add_token(disabled, status=TokenStatus.DISABLED)
    await stack.add_token(expired, expired_time=now - 10)
    await stack.add_token(exhausted, unlimited=False, remain_quota=0)
    await stack.add_token(subnet, subnet="10.0.0.0/8")
    await stack.add_token(limited_models, models="gpt-3.5-turbo")

    assert_openai_error(await post(stack, "sk-" + "n" * 48), 401, "invalid API key")
    assert_openai_error(await post(stack, "sk-" + disabled), 401, "token disabled")
    assert_openai_error(await post(stack, "sk-" + expired), 401, "token expired")
    assert_openai_error(await post(stack, "sk-" + exhausted), 401, "quota exhausted")
    assert_openai_error(await post(stack, "sk-" + subnet), 403, "is not allowed")
    assert_openai_error(await post(stack, "sk-" + limited_models), 403, "model not allowed")
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        assert_openai_error(await http.post("/chat/completions", json=BODY), 401, "no API key")
    await assert_nothing_billed(stack)


async def test_only_admin_tokens_may_pin_a_channel(stack: Stack) -> None:
    common = await stack.add_user("common", quota=10**9)
    await stack.add_token("c" * 48, user_id=common)
    backup = stack.channels["backup"]
    assert_openai_error(await post(stack, f"sk-{'c' * 48}-{backup}"), 403, "pin a channel")
    pinned = await post(stack, f"{stack.root_key}-{backup}")
    assert pinned.status_code == 200, pinned.text
    [event] = await stack.usage_events(1)
    assert event.channel_id == backup


async def test_a_token_that_cannot_cover_the_estimate_is_refused(stack: Stack) -> None:
    await stack.add_token("q" * 48, unlimited=False, remain_quota=10)
    assert_openai_error(await post(stack, "sk-" + "q" * 48), 403, "")
    response = await post(stack, "sk-" + "q" * 48)
    assert response.json()["error"]["code"] == "insufficient_token_quota"
    await assert_nothing_billed(stack)


async def outcomes_of(stack: Stack) -> list[RelayOutcome]:
    seen: list[RelayOutcome] = []

    async def record(event: RelayOutcome) -> None:
        seen.append(event)

    await stack.bus.subscribe(RelayOutcome, record)
    return seen


@pytest.mark.parametrize("failure", ["server_error", "rate_limit"])  # the fake's error kinds
async def test_failover_to_a_lower_tier_and_an_outcome_per_attempt(
    stack: Stack, upstreams: tuple[FakeUpstream, FakeUpstream], failure: str
) -> None:
    primary, _ = upstreams
    primary.add_rule(error(failure))  # type: ignore[arg-type]
    outcomes = await outcomes_of(stack)
    api = openai.AsyncOpenAI(base_url=stack.base_url, api_key=stack.root_key, max_retries=0)
    answer = await api.chat.completions.create(model=MODEL, messages=BODY["messages"])  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "hi"
    [event] = await stack.usage_events(1)
    assert event.channel_id == stack.channels["backup"]
    deadline = time.monotonic() + 5
    while len(outcomes) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert [(o.channel_id, o.success) for o in outcomes] == [
        (stack.channels["primary"], False),
        (stack.channels["backup"], True),
    ]
    assert outcomes[0].status_code == (500 if failure == "server_error" else 429)


async def test_when_every_channel_is_saturated_the_client_hears_it(
    stack: Stack, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    for fake in upstreams:
        fake.add_rule(error("rate_limit"))
    response = await post(stack, stack.root_key)
    assert_openai_error(response, 429, "upstream load of this group is saturated")
    await assert_nothing_billed(stack)


async def test_a_pinned_channel_is_never_retried(
    stack: Stack, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    primary, backup = upstreams
    primary.add_rule(error("server_error"))
    response = await post(stack, f"{stack.root_key}-{stack.channels['primary']}")
    assert response.status_code == 500
    assert backup.requests == []


async def test_gzip_request_bodies_are_accepted(stack: Stack) -> None:
    import gzip

    import orjson

    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/chat/completions",
            content=gzip.compress(orjson.dumps(BODY)),
            headers={
                "Authorization": f"Bearer {stack.root_key}",
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        )
    assert response.status_code == 200, response.text


async def test_unknown_paths_and_unimplemented_apis(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        unknown = await http.get("/nothing/here")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "Invalid URL (GET /v1/nothing/here)"
        stub = await http.post("/files", headers={"Authorization": f"Bearer {stack.root_key}"})
        assert stub.status_code == 501
        assert stub.json()["error"]["code"] == "api_not_implemented"
        preflight = await http.options(
            "/chat/completions",
            headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] in ("*", "https://chat.example")
