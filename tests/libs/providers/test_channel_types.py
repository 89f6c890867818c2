"""Channel type ids, names and default base URLs, as One API defines them."""

from __future__ import annotations

import pytest

from libs.providers.channel_types import (
    CHANNEL_TYPES,
    ChannelType,
    channel_type,
    channel_type_info,
    default_base_url,
    display_name,
)
from libs.providers.errors import UnsupportedChannelTypeError

# One API's relay/channeltype/define.go, in order (Unknown = 0 first, then iota).
ONE_API_ORDER = [
    "OpenAI",
    "API2D",
    "Azure",
    "CloseAI",
    "OpenAISB",
    "OpenAIMax",
    "OhMyGPT",
    "Custom",
    "Ails",
    "AIProxy",
    "PaLM",
    "API2GPT",
    "AIGC2D",
    "Anthropic",
    "Baidu",
    "Zhipu",
    "Ali",
    "Xunfei",
    "AI360",
    "OpenRouter",
    "AIProxyLibrary",
    "FastGPT",
    "Tencent",
    "Gemini",
    "Moonshot",
    "Baichuan",
    "Minimax",
    "Mistral",
    "Groq",
    "Ollama",
    "LingYiWanWu",
    "StepFun",
    "AwsClaude",
    "Coze",
    "Cohere",
    "DeepSeek",
    "Cloudflare",
    "DeepL",
    "TogetherAI",
    "Doubao",
    "Novita",
    "VertextAI",
    "Proxy",
    "SiliconFlow",
    "XAI",
    "Replicate",
    "BaiduV2",
    "XunfeiV2",
    "AliBailian",
    "OpenAICompatible",
    "GeminiOpenAICompatible",
]


def test_ids_follow_one_apis_order() -> None:
    assert [member.name for member in ChannelType] == ONE_API_ORDER
    assert [int(member) for member in ChannelType] == list(range(1, 52))


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (1, "https://api.openai.com"),
        (2, "https://oa.api2d.net"),
        (3, ""),
        (8, ""),
        (14, "https://api.anthropic.com"),
        (20, "https://openrouter.ai/api"),
        (22, "https://fastgpt.run/api/openapi"),
        (24, "https://generativelanguage.googleapis.com"),
        (29, "https://api.groq.com/openai"),
        (30, "http://localhost:11434"),
        (36, "https://api.deepseek.com"),
        (40, "https://ark.cn-beijing.volces.com"),
        (41, "https://api.novita.ai/v3/openai"),
        (44, "https://api.siliconflow.cn"),
        (45, "https://api.x.ai"),
        (46, "https://api.replicate.com/v1/models"),
        (47, "https://qianfan.baidubce.com"),
        (48, "https://spark-api-open.xf-yun.com"),
        (49, "https://dashscope.aliyuncs.com"),
        (50, ""),
        (51, "https://generativelanguage.googleapis.com/v1beta/openai"),
    ],
)
def test_default_base_urls(value: int, url: str) -> None:
    assert default_base_url(value) == url


def test_every_type_has_a_name_and_a_clean_default() -> None:
    assert set(CHANNEL_TYPES) == set(ChannelType)
    for member, info in CHANNEL_TYPES.items():
        assert info.type is member
        assert display_name(member)
        assert not info.default_base_url.endswith("/")
        assert info.default_base_url == "" or info.default_base_url.startswith(
            ("http://", "https://")
        )


def test_unknown_ids() -> None:
    with pytest.raises(UnsupportedChannelTypeError, match="channel type 77 is unknown"):
        channel_type(77)
    with pytest.raises(UnsupportedChannelTypeError):
        channel_type_info(0)
    assert channel_type(36) is ChannelType.DeepSeek
    # a row from a fork with more types still lists: no default, a plain name
    assert default_base_url(52) == ""
    assert display_name(52) == "type 52"
