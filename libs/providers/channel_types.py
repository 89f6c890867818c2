"""One API's channel types: their ids (stored in `channels.type`), names and default base URLs.

The ids are One API's and never change meaning: databases migrated from One API keep working.
A channel's own base URL wins; the default here is used when it is empty. Defaults carry no
trailing slash (One API's `/v1beta/openai/` and Replicate's `/v1/models/` are stored without).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from libs.providers.errors import UnsupportedChannelTypeError


class ChannelType(IntEnum):
    """One API's channel type ids (`relay/channeltype/define.go`); names kept as One API's."""

    OpenAI = 1
    API2D = 2
    Azure = 3
    CloseAI = 4
    OpenAISB = 5
    OpenAIMax = 6
    OhMyGPT = 7
    Custom = 8
    Ails = 9
    AIProxy = 10
    PaLM = 11
    API2GPT = 12
    AIGC2D = 13
    Anthropic = 14
    Baidu = 15
    Zhipu = 16
    Ali = 17
    Xunfei = 18
    AI360 = 19
    OpenRouter = 20
    AIProxyLibrary = 21
    FastGPT = 22
    Tencent = 23
    Gemini = 24
    Moonshot = 25
    Baichuan = 26
    Minimax = 27
    Mistral = 28
    Groq = 29
    Ollama = 30
    LingYiWanWu = 31
    StepFun = 32
    AwsClaude = 33
    Coze = 34
    Cohere = 35
    DeepSeek = 36
    Cloudflare = 37
    DeepL = 38
    TogetherAI = 39
    Doubao = 40
    Novita = 41
    VertextAI = 42  # sic: One API's spelling
    Proxy = 43
    SiliconFlow = 44
    XAI = 45
    Replicate = 46
    BaiduV2 = 47
    XunfeiV2 = 48
    AliBailian = 49
    OpenAICompatible = 50
    GeminiOpenAICompatible = 51


@dataclass(frozen=True, slots=True)
class ChannelTypeInfo:
    """What the gateway knows of a channel type before any channel of it exists."""

    type: ChannelType
    display_name: str
    default_base_url: str  # "" when the operator must give one (Azure, Custom, ...)


_T = ChannelType

_INFO: dict[ChannelType, tuple[str, str]] = {
    _T.OpenAI: ("OpenAI", "https://api.openai.com"),
    _T.API2D: ("API2D", "https://oa.api2d.net"),
    _T.Azure: ("Azure OpenAI", ""),
    _T.CloseAI: ("CloseAI", "https://api.closeai-proxy.xyz"),
    _T.OpenAISB: ("OpenAI-SB", "https://api.openai-sb.com"),
    _T.OpenAIMax: ("OpenAI Max", "https://api.openaimax.com"),
    _T.OhMyGPT: ("OhMyGPT", "https://api.ohmygpt.com"),
    _T.Custom: ("Custom", ""),
    _T.Ails: ("AI.LS", "https://api.caipacity.com"),
    _T.AIProxy: ("AI Proxy", "https://api.aiproxy.io"),
    _T.PaLM: ("Google PaLM2", "https://generativelanguage.googleapis.com"),
    _T.API2GPT: ("API2GPT", "https://api.api2gpt.com"),
    _T.AIGC2D: ("AIGC2D", "https://api.aigc2d.com"),
    _T.Anthropic: ("Anthropic Claude", "https://api.anthropic.com"),
    _T.Baidu: ("Baidu Wenxin Qianfan", "https://aip.baidubce.com"),
    _T.Zhipu: ("Zhipu ChatGLM", "https://open.bigmodel.cn"),
    _T.Ali: ("Alibaba Tongyi Qianwen", "https://dashscope.aliyuncs.com"),
    _T.Xunfei: ("iFlytek Spark", ""),
    _T.AI360: ("360 Zhinao", "https://ai.360.cn"),
    _T.OpenRouter: ("OpenRouter", "https://openrouter.ai/api"),
    _T.AIProxyLibrary: ("AI Proxy Library", "https://api.aiproxy.io"),
    _T.FastGPT: ("FastGPT", "https://fastgpt.run/api/openapi"),
    _T.Tencent: ("Tencent Hunyuan", "https://hunyuan.tencentcloudapi.com"),
    _T.Gemini: ("Google Gemini", "https://generativelanguage.googleapis.com"),
    _T.Moonshot: ("Moonshot AI", "https://api.moonshot.cn"),
    _T.Baichuan: ("Baichuan", "https://api.baichuan-ai.com"),
    _T.Minimax: ("MiniMax", "https://api.minimax.chat"),
    _T.Mistral: ("Mistral AI", "https://api.mistral.ai"),
    _T.Groq: ("Groq", "https://api.groq.com/openai"),
    _T.Ollama: ("Ollama", "http://localhost:11434"),
    _T.LingYiWanWu: ("01.AI (LingYiWanWu)", "https://api.lingyiwanwu.com"),
    _T.StepFun: ("StepFun", "https://api.stepfun.com"),
    _T.AwsClaude: ("AWS Claude", ""),
    _T.Coze: ("Coze", "https://api.coze.com"),
    _T.Cohere: ("Cohere", "https://api.cohere.ai"),
    _T.DeepSeek: ("DeepSeek", "https://api.deepseek.com"),
    _T.Cloudflare: ("Cloudflare", "https://api.cloudflare.com"),
    _T.DeepL: ("DeepL", "https://api-free.deepl.com"),
    _T.TogetherAI: ("together.ai", "https://api.together.xyz"),
    _T.Doubao: ("Doubao (Volcengine Ark)", "https://ark.cn-beijing.volces.com"),
    _T.Novita: ("Novita", "https://api.novita.ai/v3/openai"),
    _T.VertextAI: ("Vertex AI", ""),
    _T.Proxy: ("Proxy", ""),
    _T.SiliconFlow: ("SiliconFlow", "https://api.siliconflow.cn"),
    _T.XAI: ("xAI", "https://api.x.ai"),
    _T.Replicate: ("Replicate", "https://api.replicate.com/v1/models"),
    _T.BaiduV2: ("Baidu Qianfan V2", "https://qianfan.baidubce.com"),
    _T.XunfeiV2: ("iFlytek Spark V2", "https://spark-api-open.xf-yun.com"),
    _T.AliBailian: ("Alibaba Bailian", "https://dashscope.aliyuncs.com"),
    _T.OpenAICompatible: ("OpenAI Compatible", ""),
    _T.GeminiOpenAICompatible: (
        "Gemini (OpenAI compatible)",
        "https://generativelanguage.googleapis.com/v1beta/openai",
    ),
}

#: Every channel type, by id.
CHANNEL_TYPES: Mapping[ChannelType, ChannelTypeInfo] = MappingProxyType(
    {t: ChannelTypeInfo(t, name, url) for t, (name, url) in _INFO.items()}
)


def channel_type(value: int) -> ChannelType:
    """The ChannelType of an id; raises UnsupportedChannelTypeError for an unknown one."""
    try:
        return ChannelType(value)
    except ValueError:
        raise UnsupportedChannelTypeError(value, f"channel type {value} is unknown") from None


def channel_type_info(value: int) -> ChannelTypeInfo:
    """What is known of channel type `value`; raises UnsupportedChannelTypeError if unknown."""
    return CHANNEL_TYPES[channel_type(value)]


def default_base_url(value: int) -> str:
    """The base URL a channel of type `value` uses when its own is empty.

    "" when the type has none, or is unknown (a row from a fork with more types): such a
    channel is refused when it is used (`Adaptors.for_type`), not when it is listed.
    """
    try:
        return CHANNEL_TYPES[ChannelType(value)].default_base_url
    except ValueError:
        return ""


def display_name(value: int) -> str:
    """The name the UI shows for channel type `value` (`type N` for an unknown id)."""
    try:
        return CHANNEL_TYPES[ChannelType(value)].display_name
    except ValueError:
        return f"type {value}"
