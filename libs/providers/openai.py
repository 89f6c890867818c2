"""OpenAI and every OpenAI-compatible channel type: pass-through with per-type URL rules.

The body goes upstream untouched (the client's own bytes) unless something must change: for a
stream that should report usage, `stream_options.include_usage` is added. Answers come back
unchanged; the adaptor only reads the usage out of them, and reads errors of any shape.

URL rules, from One API's per-type `GetRequestURL` (`{rest}` is the OpenAI path without its
`/v1`, e.g. `/chat/completions`):

- default: `{base}/v1{rest}` — `/v1` is not doubled when the base already ends with it;
- OpenAI behind a Cloudflare AI Gateway (`https://gateway.ai.cloudflare.com/...`): `{base}{rest}`;
- Novita, OpenAI Compatible, Gemini (OpenAI compatible): the base carries its version,
  `{base}{rest}`;
- Doubao: `{base}/api/v3{rest}` (chat, embeddings);
- MiniMax: `{base}/v1/text/chatcompletion_v2` (chat only);
- Baidu Qianfan V2: `{base}/v2/chat/completions` (chat only);
- Alibaba Bailian: `{base}/compatible-mode/v1{rest}` (chat, embeddings).

Auth is `Authorization: Bearer {key}`; OpenRouter also gets its attribution headers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from libs.providers.base import (
    Adaptor,
    BalanceUnsupportedError,
    ChannelInfo,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    Usage,
)
from libs.providers.channel_types import ChannelType, channel_type
from libs.providers.errors import (
    BalanceReadError,
    InvalidRequestError,
    UnsupportedChannelTypeError,
    UnsupportedModeError,
    embedded_error,
    error_from_body,
)
from libs.providers.openai_format import usage_from_object

__all__ = [
    "ALL_MODES",
    "MODE_PATHS",
    "OPENAI_COMPATIBLE_TYPES",
    "OpenAIAdaptor",
    "OpenAIStreamDecoder",
    "bearer_headers",
    "channel_type_of",
    "describe_request",
    "json_body",
    "modes_for",
    "multipart_fields",
    "read_openai_response",
    "request_url",
]

_T = ChannelType

#: The OpenAI endpoint of each mode.
MODE_PATHS: Final[Mapping[Mode, str]] = {
    Mode.CHAT: "/v1/chat/completions",
    Mode.COMPLETIONS: "/v1/completions",
    Mode.EDITS: "/v1/edits",
    Mode.EMBEDDINGS: "/v1/embeddings",
    Mode.MODERATIONS: "/v1/moderations",
    Mode.IMAGES: "/v1/images/generations",
    Mode.SPEECH: "/v1/audio/speech",
    Mode.TRANSCRIPTION: "/v1/audio/transcriptions",
    Mode.TRANSLATION: "/v1/audio/translations",
}

ALL_MODES: Final = frozenset(Mode)
_MULTIPART_MODES: Final = frozenset({Mode.TRANSCRIPTION, Mode.TRANSLATION})
_USAGE_MODES: Final = frozenset({Mode.CHAT, Mode.COMPLETIONS, Mode.EDITS, Mode.EMBEDDINGS})
_STREAM_USAGE_MODES: Final = frozenset({Mode.CHAT, Mode.COMPLETIONS})

#: The channel types One API serves with its OpenAI adaptor (Azure has its own here).
OPENAI_COMPATIBLE_TYPES: Final = frozenset(
    {
        _T.OpenAI, _T.API2D, _T.CloseAI, _T.OpenAISB, _T.OpenAIMax, _T.OhMyGPT, _T.Custom,
        _T.Ails, _T.AIProxy, _T.API2GPT, _T.AIGC2D, _T.AI360, _T.OpenRouter, _T.FastGPT,
        _T.Moonshot, _T.Baichuan, _T.Minimax, _T.Mistral, _T.Groq, _T.LingYiWanWu,
        _T.StepFun, _T.DeepSeek, _T.TogetherAI, _T.Doubao, _T.Novita, _T.SiliconFlow, _T.XAI,
        _T.BaiduV2, _T.XunfeiV2, _T.AliBailian, _T.OpenAICompatible, _T.GeminiOpenAICompatible,
    }
)  # fmt: skip

_MODES_BY_TYPE: Final[Mapping[ChannelType, frozenset[Mode]]] = {
    _T.Minimax: frozenset({Mode.CHAT}),
    _T.BaiduV2: frozenset({Mode.CHAT}),
    _T.Doubao: frozenset({Mode.CHAT, Mode.EMBEDDINGS}),
    _T.AliBailian: frozenset({Mode.CHAT, Mode.EMBEDDINGS}),
    _T.Novita: frozenset({Mode.CHAT, Mode.COMPLETIONS, Mode.EMBEDDINGS}),
}

#: Types whose base URL already carries the API version: only the path after `/v1` is added.
_VERSIONED_BASE: Final = frozenset({_T.Novita, _T.OpenAICompatible, _T.GeminiOpenAICompatible})
_CLOUDFLARE_GATEWAY: Final = "https://gateway.ai.cloudflare.com"

_OPENAI_MODELS = (
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "gpt-3.5-turbo",
    "text-embedding-3-small", "text-embedding-3-large", "dall-e-3", "tts-1", "whisper-1",
    "omni-moderation-latest",
)  # fmt: skip

_DEFAULT_MODELS: Final[Mapping[ChannelType, tuple[str, ...]]] = {
    _T.AI360: ("360gpt-pro", "360gpt-turbo", "360gpt2-pro", "embedding-S2-V1"),
    _T.OpenRouter: (
        "openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet",
        "google/gemini-2.0-flash-001", "deepseek/deepseek-chat",
        "meta-llama/llama-3.1-70b-instruct",
    ),
    _T.Moonshot: ("moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k"),
    _T.Baichuan: ("Baichuan4", "Baichuan3-Turbo", "Baichuan2-Turbo", "Baichuan-Text-Embedding"),
    _T.Minimax: ("abab6.5s-chat", "abab6.5g-chat", "abab5.5-chat", "MiniMax-Text-01"),
    _T.Mistral: (
        "mistral-large-latest", "mistral-small-latest", "open-mistral-nemo", "codestral-latest",
        "mistral-embed",
    ),
    _T.Groq: (
        "llama-3.3-70b-versatile", "llama-3.1-8b-instant", "gemma2-9b-it", "mixtral-8x7b-32768",
    ),
    _T.LingYiWanWu: ("yi-lightning", "yi-large", "yi-medium", "yi-vision"),
    _T.StepFun: ("step-1-8k", "step-1-32k", "step-2-16k", "step-1v-8k"),
    _T.DeepSeek: ("deepseek-chat", "deepseek-reasoner"),
    _T.TogetherAI: (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo", "Qwen/Qwen2.5-72B-Instruct-Turbo",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
    ),
    _T.Doubao: ("Doubao-pro-32k", "Doubao-pro-128k", "Doubao-lite-32k", "Doubao-embedding"),
    _T.Novita: (
        "meta-llama/llama-3.1-8b-instruct", "meta-llama/llama-3.1-70b-instruct",
        "mistralai/mistral-nemo",
    ),
    _T.SiliconFlow: (
        "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen2.5-72B-Instruct", "BAAI/bge-m3",
    ),
    _T.XAI: ("grok-2-latest", "grok-2-vision-latest", "grok-beta"),
    _T.BaiduV2: ("ernie-4.0-8k-latest", "ernie-3.5-8k", "ernie-speed-128k", "ernie-lite-8k"),
    _T.XunfeiV2: ("lite", "generalv3", "pro-128k", "generalv3.5", "max-32k", "4.0Ultra"),
    _T.AliBailian: ("qwen-turbo", "qwen-plus", "qwen-max", "qwen-long", "text-embedding-v3"),
    _T.GeminiOpenAICompatible: ("gemini-2.0-flash", "gemini-1.5-pro", "gemini-1.5-flash"),
}  # fmt: skip


# --- URLs -------------------------------------------------------------------------------------


def _under(base: str, prefix: str) -> str:
    """`base` + `prefix`, unless the operator already put `prefix` at the end of `base`."""
    return base if base.endswith(prefix) else base + prefix


def _root(base: str) -> str:
    """`base` without a trailing `/v1` (for endpoints outside the versioned API)."""
    return base.removesuffix("/v1")


def modes_for(channel_type_id: int) -> frozenset[Mode]:
    """The modes an OpenAI-compatible channel type serves."""
    try:
        return _MODES_BY_TYPE.get(ChannelType(channel_type_id), ALL_MODES)
    except ValueError:
        return ALL_MODES


def request_url(channel_type_id: int, base_url: str, mode: Mode) -> str:
    """The upstream URL of `mode` on a channel of this type (see the module docstring)."""
    base = base_url.rstrip("/")
    if not base:
        raise InvalidRequestError(f"channel type {channel_type_id} needs a base URL; none is set")
    if mode not in modes_for(channel_type_id):
        raise UnsupportedModeError(f"channel type {channel_type_id} does not serve {mode.value}")
    rest = MODE_PATHS[mode].removeprefix("/v1")
    match channel_type_id:
        case _T.Minimax:
            return _under(base, "/v1") + "/text/chatcompletion_v2"
        case _T.Doubao:
            return _under(base, "/api/v3") + rest
        case _T.BaiduV2:
            return _under(base, "/v2") + rest
        case _T.AliBailian:
            return _under(base, "/compatible-mode/v1") + rest
        case t if t in _VERSIONED_BASE:
            return base + rest
        case _T.OpenAI if base.startswith(_CLOUDFLARE_GATEWAY):
            return base + rest
        case _:
            return _under(base, "/v1") + rest


# --- bodies -----------------------------------------------------------------------------------


def _wants_stream_usage(request: RelayRequest) -> bool:
    if not (request.stream and request.include_usage and request.mode in _STREAM_USAGE_MODES):
        return False
    options = request.body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def json_body(request: RelayRequest) -> bytes:
    """The JSON body to send: the client's bytes when nothing changes, else re-encoded.

    The only change is asking a stream for its usage (`stream_options.include_usage`).
    """
    if _wants_stream_usage(request):
        options = request.body.get("stream_options")
        merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps({**request.body, "stream_options": merged})
    if request.raw is not None:
        return request.raw
    return orjson.dumps(request.body)


def _form_value(value: Any) -> str | list[str]:
    if isinstance(value, list | tuple):
        return [item if isinstance(item, str) else _form_scalar(item) for item in value]
    return value if isinstance(value, str) else _form_scalar(value)


def _form_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def multipart_fields(request: RelayRequest) -> dict[str, str | list[str]]:
    """The text fields of a multipart request (audio), as they go upstream."""
    if not request.files:
        raise InvalidRequestError(f"{request.mode.value} needs an uploaded file; none was given")
    return {name: _form_value(value) for name, value in request.body.items() if value is not None}


def bearer_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def describe_request(url: str, headers: dict[str, str], request: RelayRequest) -> UpstreamRequest:
    """The upstream request for an OpenAI-format `request` sent to `url` (JSON or multipart)."""
    if request.mode in _MULTIPART_MODES:
        return UpstreamRequest(
            "POST",
            url,
            headers=headers,
            files=request.files,
            form_fields=multipart_fields(request),
        )
    headers = {**headers, "Content-Type": "application/json"}
    if request.stream:
        headers["Accept"] = "text/event-stream"
    return UpstreamRequest("POST", url, headers=headers, body=json_body(request))


# --- answers ----------------------------------------------------------------------------------


def _meaningful(usage: Usage | None) -> Usage | None:
    """The usage, or None when it counts nothing (the relay then counts by itself)."""
    if usage is None or (usage.prompt_tokens == 0 and usage.completion_tokens == 0):
        return None
    return usage


def _not_json(body: bytes) -> UpstreamError:
    kind = "an empty body" if not body.strip() else "a body that is not a JSON object"
    return UpstreamError(500, f"upstream answered with {kind}", code="bad_response_body")


def read_openai_response(request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
    """An OpenAI-format success answer, unchanged, with its usage; errors inside it raise."""
    if request.mode is Mode.SPEECH:
        return body, None
    if request.mode not in _USAGE_MODES:
        # images, moderations and audio texts (json, text, srt, vtt, verbose_json): no usage
        # the relay trusts; only an error envelope answered with 200 is caught
        if body.lstrip().startswith(b"{"):
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                return body, None
            error = embedded_error(payload)
            if error is not None:
                raise error
        return body, None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _not_json(body) from None
    if not isinstance(payload, dict):
        raise _not_json(body)
    error = embedded_error(payload)
    if error is not None:
        raise error
    return body, _meaningful(usage_from_object(payload.get("usage")))


class OpenAIStreamDecoder(StreamDecoder):
    """Reads OpenAI's SSE stream line by line.

    Forwards each `data:` payload that has choices or usage, untouched; drops the rest
    (Azure's prompt-filter chunk, `[DONE]`, comments and keep-alives, `event:`/`id:` lines).
    Keeps the last usage that counts something, accumulates the generated text (content,
    reasoning, tool-call arguments) and records an error sent inside the stream.
    """

    def __init__(self, mode: Mode = Mode.CHAT) -> None:
        self.mode = mode
        self.usage = None
        self.error = None
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, line: bytes) -> Iterable[bytes]:
        line = line.strip()
        if not line or line.startswith(b":"):
            return ()
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                return ()
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                return ()
            return self._payload(data, payload)
        if line.startswith(b"{"):  # an error answered as plain JSON to a stream request
            try:
                payload = orjson.loads(line)
            except orjson.JSONDecodeError:
                return ()
            error = embedded_error(payload)
            if error is not None:
                self.error = error
        return ()

    def _payload(self, data: bytes, payload: Any) -> Iterable[bytes]:
        if not isinstance(payload, dict):
            return ()
        raw_choices = payload.get("choices")
        choices: list[Any] = raw_choices if isinstance(raw_choices, list) else []
        has_choices = bool(choices)
        if not has_choices:
            error = embedded_error(payload)
            if error is not None:
                self.error = error
                return ()
        raw_usage = payload.get("usage")
        has_usage = isinstance(raw_usage, dict)
        if has_usage:
            usage = _meaningful(usage_from_object(raw_usage))
            if usage is not None:
                self.usage = usage
        self._collect(choices)
        return (data,) if has_choices or has_usage else ()

    def _collect(self, choices: list[Any]) -> None:
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if self.mode is Mode.COMPLETIONS:
                if isinstance(choice.get("text"), str):
                    self._parts.append(choice["text"])
                continue
            delta = choice.get("delta") or choice.get("message")
            if not isinstance(delta, dict):
                continue
            for key in ("reasoning_content", "reasoning", "content"):
                if isinstance(delta.get(key), str):
                    self._parts.append(delta[key])
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    self._parts.append(function["arguments"])
            legacy = delta.get("function_call")
            if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
                self._parts.append(legacy["arguments"])


# --- balances ---------------------------------------------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _balance_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BalanceReadError("balance answer is not JSON") from None
    if not isinstance(payload, dict):
        raise BalanceReadError("balance answer is not a JSON object")
    error = embedded_error(payload)
    if error is not None:
        raise BalanceReadError(f"balance query failed: {error.message}")
    return payload


def _number(value: Any, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise BalanceReadError(f"balance answer has no numeric {what}")


def _data(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


class OpenAIAdaptor(Adaptor):
    """OpenAI and the OpenAI-compatible channel types.

    One instance serves one channel type: its modes, default models and balance format.
    URLs follow the channel's own type (`ChannelInfo.type`).
    """

    def __init__(self, channel_type: int = ChannelType.OpenAI) -> None:
        self.channel_type = channel_type_of(channel_type)
        self.modes = modes_for(self.channel_type)

    # --- requests ----------------------------------------------------------------------------
    def headers(self, channel: ChannelInfo) -> dict[str, str]:
        headers = bearer_headers(channel.key)
        if channel.type == _T.OpenRouter:
            headers["HTTP-Referer"] = "https://github.com/songquanpeng/one-api"
            headers["X-Title"] = "One API"
        return headers

    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        url = request_url(channel.type, channel.base_url, request.mode)
        return describe_request(url, self.headers(channel), request)

    # --- answers -----------------------------------------------------------------------------
    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        return read_openai_response(request, body)

    def stream_decoder(self, request: RelayRequest) -> StreamDecoder:
        return OpenAIStreamDecoder(request.mode)

    def read_error(self, status: int, body: bytes) -> UpstreamError:
        return error_from_body(status, body)

    def default_models(self) -> tuple[str, ...]:
        return _DEFAULT_MODELS.get(self.channel_type, _OPENAI_MODELS)

    # --- balances ----------------------------------------------------------------------------
    def balance_requests(self, channel: ChannelInfo) -> list[UpstreamRequest]:
        """One API's balance queries: OpenAI's billing pair, or the provider's own API."""
        base = channel.base_url.rstrip("/")
        auth = bearer_headers(channel.key)
        match channel.type:
            case _T.OpenAI | _T.Custom:
                if not base:
                    raise BalanceUnsupportedError("the channel has no base URL")
                root = _under(base, "/v1")
                today = _today()
                start = today.replace(day=1)
                usage_url = (
                    f"{root}/dashboard/billing/usage?start_date={start.isoformat()}"
                    f"&end_date={today.isoformat()}"
                )
                return [
                    UpstreamRequest("GET", f"{root}/dashboard/billing/subscription", auth),
                    UpstreamRequest("GET", usage_url, auth),
                ]
            case _T.CloseAI | _T.API2GPT | _T.AIGC2D:
                return [UpstreamRequest("GET", f"{base}/dashboard/billing/credit_grants", auth)]
            case _T.OpenAISB:
                url = f"{base}/sb-api/user/status?api_key={quote(channel.key, safe='')}"
                return [UpstreamRequest("GET", url, auth)]
            case _T.AIProxy:
                url = "https://aiproxy.io/api/report/getUserOverview"
                return [UpstreamRequest("GET", url, {"Api-Key": channel.key})]
            case _T.SiliconFlow:
                return [UpstreamRequest("GET", f"{_under(base, '/v1')}/user/info", auth)]
            case _T.DeepSeek:
                return [UpstreamRequest("GET", f"{_root(base)}/user/balance", auth)]
            case _T.OpenRouter:
                return [UpstreamRequest("GET", f"{_under(base, '/v1')}/credits", auth)]
        raise BalanceUnsupportedError(f"channel type {channel.type} has no balance API")

    def read_balance(self, bodies: list[bytes]) -> float:
        """The balance in USD, read the way One API reads each provider's answer."""
        t = self.channel_type
        if t in (_T.OpenAI, _T.Custom):
            if len(bodies) != 2:
                raise BalanceReadError(f"expected 2 balance answers, got {len(bodies)}")
            subscription, usage = (_balance_object(body) for body in bodies)
            hard_limit = _number(subscription.get("hard_limit_usd"), "hard_limit_usd")
            used_cents = _number(usage.get("total_usage"), "total_usage")  # in 0.01 USD
            return hard_limit - used_cents / 100
        if len(bodies) != 1:
            raise BalanceReadError(f"expected 1 balance answer, got {len(bodies)}")
        payload = _balance_object(bodies[0])
        match t:
            case _T.CloseAI | _T.AIGC2D:
                return _number(payload.get("total_available"), "total_available")
            case _T.API2GPT:
                return _number(payload.get("total_remaining"), "total_remaining")
            case _T.OpenAISB:
                data = payload.get("data")
                if not isinstance(data, dict):
                    raise BalanceReadError(
                        f"balance query failed: {payload.get('msg') or 'no data'}"
                    )
                return _number(data.get("credit"), "data.credit")
            case _T.AIProxy:
                if payload.get("success") is not True:
                    raise BalanceReadError(
                        f"balance query failed: code {payload.get('error_code')}, "
                        f"message: {payload.get('message')}"
                    )
                return _number(_data(payload).get("totalPoints"), "data.totalPoints")
            case _T.SiliconFlow:
                if payload.get("code") != 20000:
                    raise BalanceReadError(
                        f"balance query failed: code {payload.get('code')}, "
                        f"message: {payload.get('message')}"
                    )
                data = _data(payload)
                total = data.get("totalBalance", data.get("balance"))
                return _number(total, "data.totalBalance")
            case _T.DeepSeek:
                return _deepseek_balance(payload)
            case _T.OpenRouter:
                data = _data(payload)
                credits = _number(data.get("total_credits"), "data.total_credits")
                return credits - _number(data.get("total_usage"), "data.total_usage")
        raise BalanceUnsupportedError(f"channel type {int(t)} has no balance API")


def _deepseek_balance(payload: dict[str, Any]) -> float:
    """DeepSeek's USD balance when the account has one, else its CNY figure as One API does."""
    infos = payload.get("balance_infos")
    by_currency = {info.get("currency"): info for info in infos or () if isinstance(info, dict)}
    for currency in ("USD", "CNY"):
        if currency in by_currency:
            return _number(by_currency[currency].get("total_balance"), "total_balance")
    raise BalanceReadError("balance answer has no USD or CNY balance")


def channel_type_of(value: int) -> ChannelType:
    """The OpenAI-compatible ChannelType of `value`; raises for types this adaptor cannot serve."""
    member = channel_type(value)
    if member not in OPENAI_COMPATIBLE_TYPES:
        raise UnsupportedChannelTypeError(value, f"channel type {value} is not OpenAI-compatible")
    return member
