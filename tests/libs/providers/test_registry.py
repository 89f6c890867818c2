"""Adaptors: which adaptor serves which channel type, configured from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from libs.common.settings import load_settings
from libs.providers import Adaptors, ChannelInfo, Mode, RelayRequest
from libs.providers.anthropic import AnthropicAdaptor
from libs.providers.azure import AzureAdaptor
from libs.providers.channel_types import ChannelType
from libs.providers.errors import UnsupportedChannelTypeError
from libs.providers.gemini import GeminiAdaptor
from libs.providers.ollama import OllamaAdaptor
from libs.providers.openai import OPENAI_COMPATIBLE_TYPES, OpenAIAdaptor
from tests.fakes import FakeUpstream

T = ChannelType

NOT_YET = [
    T.PaLM,
    T.Baidu,
    T.Zhipu,
    T.Ali,
    T.Xunfei,
    T.AIProxyLibrary,
    T.Tencent,
    T.AwsClaude,
    T.Coze,
    T.Cohere,
    T.Cloudflare,
    T.DeepL,
    T.VertextAI,
    T.Proxy,
    T.Replicate,
]


@pytest.fixture(scope="module")
def adaptors() -> Adaptors:
    return Adaptors.build()


@pytest.mark.parametrize("channel_type", sorted(OPENAI_COMPATIBLE_TYPES))
def test_openai_compatible_types_get_an_openai_adaptor_of_their_type(
    adaptors: Adaptors, channel_type: ChannelType
) -> None:
    adaptor = adaptors.for_type(int(channel_type))
    assert isinstance(adaptor, OpenAIAdaptor)
    assert adaptor.channel_type is channel_type
    assert adaptors.for_type(channel_type) is adaptor  # built once, reused


def test_own_families(adaptors: Adaptors) -> None:
    assert isinstance(adaptors.for_type(3), AzureAdaptor)
    assert isinstance(adaptors.for_type(14), AnthropicAdaptor)
    assert isinstance(adaptors.for_type(24), GeminiAdaptor)
    assert isinstance(adaptors.for_type(30), OllamaAdaptor)


@pytest.mark.parametrize("channel_type", NOT_YET)
def test_types_not_implemented_yet_are_refused_clearly(
    adaptors: Adaptors, channel_type: ChannelType
) -> None:
    assert not adaptors.supports(channel_type)
    with pytest.raises(UnsupportedChannelTypeError, match="is not supported yet") as caught:
        adaptors.for_type(channel_type)
    assert caught.value.channel_type == channel_type
    assert f"channel type {int(channel_type)} (" in str(caught.value)


def test_every_type_is_either_served_or_refused(adaptors: Adaptors) -> None:
    assert adaptors.supported_types | set(NOT_YET) == set(ChannelType)
    assert not adaptors.supported_types & set(NOT_YET)


@pytest.mark.parametrize("value", [0, 52, 99, -1])
def test_unknown_ids(adaptors: Adaptors, value: int) -> None:
    assert not adaptors.supports(value)
    with pytest.raises(UnsupportedChannelTypeError, match="unknown"):
        adaptors.for_type(value)
    assert adaptors.default_base_url(value) == ""  # listed without a default, refused when used


def test_default_base_urls(adaptors: Adaptors) -> None:
    assert adaptors.default_base_url(1) == "https://api.openai.com"
    assert adaptors.default_base_url(29) == "https://api.groq.com/openai"
    assert adaptors.default_base_url(30) == "http://localhost:11434"
    assert adaptors.default_base_url(3) == ""
    assert adaptors.default_base_url(15) == "https://aip.baidubce.com"  # known, not served yet


def test_default_models_differ_by_type(adaptors: Adaptors) -> None:
    assert "deepseek-chat" in adaptors.for_type(T.DeepSeek).default_models()
    assert "gpt-4o" in adaptors.for_type(T.OpenAI).default_models()
    for channel_type in adaptors.supported_types:
        assert adaptors.for_type(channel_type).default_models(), channel_type


def test_gemini_options_come_from_the_settings() -> None:
    settings = load_settings(gemini_version="v1test", gemini_safety_setting="BLOCK_ONLY_HIGH")
    adaptor = Adaptors.from_settings(settings).for_type(T.Gemini)
    channel = ChannelInfo(
        id=1, type=T.Gemini, key="g", base_url="https://generativelanguage.googleapis.com"
    )
    body = {"model": "gemini-pro", "messages": [{"role": "user", "content": "hi"}]}
    described = adaptor.build_request(channel, RelayRequest(Mode.CHAT, "gemini-pro", body))
    assert "/v1test/models/gemini-pro:" in described.url
    assert described.body is not None
    thresholds = {s["threshold"] for s in orjson.loads(described.body)["safetySettings"]}
    assert thresholds == {"BLOCK_ONLY_HIGH"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_an_adaptor_from_the_registry_talks_to_its_upstream(
    adaptors: Adaptors, http: aiohttp.ClientSession
) -> None:
    async with FakeUpstream("openai") as fake:
        channel = ChannelInfo(id=7, type=T.Moonshot, key="sk-moon", base_url=fake.url)
        body = {"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "a b"}]}
        request = RelayRequest(Mode.CHAT, "moonshot-v1-8k", body)
        adaptor = adaptors.for_type(channel.type)
        response = await adaptor.open(http, channel, request)
        try:
            answer = await response.read()
        finally:
            response.release()
    assert response.status == 200
    _, usage = adaptor.read_response(request, answer)
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 2)
