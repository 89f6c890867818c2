"""AzureAdaptor against the fake Azure OpenAI upstream: real HTTP through `adaptor.open`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from libs.providers.azure import DEFAULT_API_VERSION, AzureAdaptor
from libs.providers.base import ChannelInfo, FormFile, Mode, RelayRequest, StreamDecoder
from libs.providers.channel_types import ChannelType
from libs.providers.errors import UnsupportedModeError
from tests.fakes import FakeUpstream, content_filtered, error, keepalive, mid_stream_error

MESSAGES = [{"role": "user", "content": "tell me about azure"}]
DEPLOYMENTS = {"gpt-35-turbo": "gpt-3.5-turbo", "gpt-4o": "gpt-4o", "dall-e-3": "dall-e-3"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("azure", keys=["az-key"], deployments=DEPLOYMENTS) as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel_for(
    fake: FakeUpstream,
    *,
    config: dict[str, Any] | None = None,
    other: str = "",
    key: str = "az-key",
) -> ChannelInfo:
    return ChannelInfo(
        id=3,
        type=ChannelType.Azure,
        key=key,
        base_url=fake.url,
        config=config if config is not None else {"api_version": "2024-06-01"},
        other=other,
    )


def chat(model: str = "gpt-3.5-turbo", *, stream: bool = False) -> RelayRequest:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES}
    if stream:
        body["stream"] = True
    return RelayRequest(Mode.CHAT, model, body, stream=stream, raw=orjson.dumps(body))


async def complete(
    http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[int, bytes]:
    response = await AzureAdaptor().open(http, channel, request)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def stream_through(
    http: aiohttp.ClientSession, channel: ChannelInfo, request: RelayRequest
) -> tuple[StreamDecoder, list[dict[str, Any]]]:
    adaptor = AzureAdaptor()
    response = await adaptor.open(http, channel, request)
    assert response.status == 200
    decoder = adaptor.stream_decoder(request)
    out: list[bytes] = []
    try:
        async for line in response.lines():
            out.extend(decoder.feed(line))
    finally:
        response.release()
    out.extend(decoder.close())
    return decoder, [orjson.loads(chunk) for chunk in out]


async def test_chat_goes_to_the_deployment_without_dots(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    request = chat()
    status, body = await complete(http, channel_for(fake), request)
    assert status == 200
    sent = fake.last_request
    assert sent.path == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert sent.query == {"api-version": "2024-06-01"}
    assert sent.headers["api-key"] == "az-key"
    assert "authorization" not in sent.headers
    assert sent.raw == request.raw
    out, usage = AzureAdaptor().read_response(request, body)
    answer = json.loads(out)
    assert answer["model"] == "gpt-3.5-turbo"
    assert "prompt_filter_results" in answer  # Azure's annotations pass through
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 4)


@pytest.mark.parametrize(
    ("config", "other", "version"),
    [
        ({"api_version": "2024-02-01"}, "2023-05-15", "2024-02-01"),
        ({}, "2023-05-15", "2023-05-15"),
        ({"api_version": " "}, "", DEFAULT_API_VERSION),
    ],
)
async def test_api_version_from_config_then_other_then_default(
    fake: FakeUpstream,
    http: aiohttp.ClientSession,
    config: dict[str, Any],
    other: str,
    version: str,
) -> None:
    status, _ = await complete(http, channel_for(fake, config=config, other=other), chat())
    assert status == 200
    assert fake.last_request.query["api-version"] == version


async def test_stream_drops_the_prompt_filter_chunk(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(keepalive(2))
    decoder, chunks = await stream_through(http, channel_for(fake), chat("gpt-4o", stream=True))
    assert fake.last_request.json["stream_options"] == {"include_usage": True}
    assert all(chunk["choices"] or chunk.get("usage") for chunk in chunks)
    assert not any("prompt_filter_results" in chunk for chunk in chunks)
    # role chunk, four pieces, finish chunk, usage chunk
    assert len(chunks) == 7
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert decoder.text == "tell me about azure"
    assert decoder.usage is not None
    assert (decoder.usage.prompt_tokens, decoder.usage.completion_tokens) == (4, 4)


async def test_mid_stream_error(fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    fake.push(mid_stream_error(after=2, kind="server_error"))
    decoder, chunks = await stream_through(http, channel_for(fake), chat("gpt-4o", stream=True))
    assert len(chunks) == 1  # the filter chunk is dropped, the role chunk forwarded
    assert decoder.error is not None
    assert decoder.error.code == "InternalServerError"
    assert decoder.usage is None


async def test_blocked_prompt_is_a_content_filter_error(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(content_filtered("prompt"))
    status, body = await complete(http, channel_for(fake), chat())
    mapped = AzureAdaptor().read_error(status, body)
    assert status == 400
    assert mapped.code == "content_filter"
    assert mapped.type == "invalid_request_error"
    assert mapped.param == "prompt"
    assert "content management policy" in mapped.message


async def test_filtered_output_passes_through(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    fake.push(content_filtered("output"))
    request = chat()
    status, body = await complete(http, channel_for(fake), request)
    assert status == 200
    out, _ = AzureAdaptor().read_response(request, body)
    assert json.loads(out)["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("kind", "status", "code", "type_"),
    [
        ("rate_limit", 429, "429", "upstream_error"),
        ("insufficient_quota", 429, "insufficient_quota", "insufficient_quota"),
        ("server_error", 500, "InternalServerError", "upstream_error"),
        ("context_length", 400, "context_length_exceeded", "invalid_request_error"),
    ],
)
async def test_azure_errors_are_mapped(
    fake: FakeUpstream, http: aiohttp.ClientSession, kind: Any, status: int, code: str, type_: str
) -> None:
    fake.push(error(kind))
    got, body = await complete(http, channel_for(fake), chat())
    mapped = AzureAdaptor().read_error(got, body)
    assert (got, mapped.status_code, mapped.code, mapped.type) == (status, status, code, type_)
    assert mapped.message


async def test_unknown_deployment_and_bad_key(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    status, body = await complete(http, channel_for(fake), chat("gpt-4.1"))
    mapped = AzureAdaptor().read_error(status, body)
    assert fake.last_request.path == "/openai/deployments/gpt-41/chat/completions"
    assert (status, mapped.code, mapped.type) == (
        404,
        "DeploymentNotFound",
        "invalid_request_error",
    )
    status, body = await complete(http, channel_for(fake, key="wrong"), chat())
    assert status == 401
    assert "Access denied" in AzureAdaptor().read_error(status, body).message


async def test_images_use_the_model_name_as_deployment(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    body = {"model": "dall-e-3", "prompt": "a lighthouse"}
    request = RelayRequest(Mode.IMAGES, "dall-e-3", body)
    status, answer = await complete(http, channel_for(fake), request)
    assert status == 200
    assert fake.last_request.path == "/openai/deployments/dall-e-3/images/generations"
    assert AzureAdaptor().read_response(request, answer) == (answer, None)


async def test_embeddings_and_transcription(
    fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    embed = RelayRequest(Mode.EMBEDDINGS, "gpt-4o", {"model": "gpt-4o", "input": "a b c"})
    status, answer = await complete(http, channel_for(fake), embed)
    assert status == 200
    assert fake.last_request.path == "/openai/deployments/gpt-4o/embeddings"
    _, usage = AzureAdaptor().read_response(embed, answer)
    assert usage is not None
    assert usage.prompt_tokens == 3
    upload = FormFile("file", "a.txt", b"hello azure", "text/plain")
    fields = {"model": "gpt-4o", "response_format": "text"}
    transcribe = RelayRequest(Mode.TRANSCRIPTION, "gpt-4o", fields, files=(upload,))
    status, answer = await complete(http, channel_for(fake), transcribe)
    assert status == 200
    assert fake.last_request.path == "/openai/deployments/gpt-4o/audio/transcriptions"
    assert answer == b"hello azure\n"


def test_cloudflare_gateway_leaves_out_the_deployments_segment() -> None:
    channel = ChannelInfo(
        id=1,
        type=ChannelType.Azure,
        key="k",
        base_url="https://gateway.ai.cloudflare.com/v1/acc/gw/azure-openai/res",
        config={"api_version": "2024-06-01"},
    )
    described = AzureAdaptor().build_request(channel, chat("gpt-4o"))
    assert described.url == (
        "https://gateway.ai.cloudflare.com/v1/acc/gw/azure-openai/res/gpt-4o/chat/completions"
        "?api-version=2024-06-01"
    )


def test_modes_and_models() -> None:
    adaptor = AzureAdaptor()
    assert Mode.MODERATIONS not in adaptor.modes
    channel = ChannelInfo(id=1, type=ChannelType.Azure, key="k", base_url="https://x.example")
    request = RelayRequest(Mode.MODERATIONS, "m", {"input": "x"})
    with pytest.raises(UnsupportedModeError):
        adaptor.build_request(channel, request)
    assert "gpt-4o" in adaptor.default_models()
