"""Anthropic's Messages API (channel type 14): OpenAI chat completions <-> `POST /v1/messages`.

Request (`build_request`):

- `system` and `developer` messages, wherever they stand, are joined with a newline into the
  top-level `system`; the Messages API has no system role.
- user and assistant turns keep their order; consecutive turns of one role are merged into one
  message, as the API requires alternation. `tool` (and legacy `function`) messages become
  `tool_result` blocks of a user turn, so consecutive results share one user message. Empty
  text blocks are dropped (the API rejects them), and so is the trailing whitespace of a final
  assistant turn (a prefill may not end with whitespace).
- content parts: text; `image_url` with a `data:` URL -> a base64 image source with its media
  type, any other URL -> a `url` image source (Anthropic fetches it, the relay does not); a
  `file` part holding a `data:application/pdf` URL -> a base64 `document`. Others are dropped.
- `max_completion_tokens`, else `max_tokens`, else DEFAULT_MAX_TOKENS (4096): the API requires
  one, and 4096 is the largest output every Claude model accepts. `temperature`, `top_p` and
  `top_k` pass unchanged (no clamping: Anthropic's own error explains a value out of range);
  `stop` (string or list) -> `stop_sequences` without whitespace-only entries; `user` ->
  `metadata.user_id`; `n` is ignored (one answer only).
- `tools` of type function -> `{name, description, input_schema}` (legacy `functions` too);
  `tool_choice` auto/none/required/named -> auto/none/any/tool, sent only with tools;
  `parallel_tool_calls: false` -> `disable_parallel_tool_use`. Assistant `tool_calls` ->
  `tool_use` blocks whose input is the parsed arguments (`{}` when they are not a JSON object).
- headers: `x-api-key`, `anthropic-version: 2023-06-01`, and `anthropic-beta` from the
  channel config key `anthropic_beta` (a string or a list of strings).

Answer: text blocks joined; `tool_use` -> `tool_calls` (arguments as compact JSON); `thinking`
-> `reasoning_content`. Stop reasons: end_turn, stop_sequence, pause_turn -> stop;
max_tokens, model_context_window_exceeded -> length; tool_use -> tool_calls; refusal ->
content_filter. Usage: `prompt_tokens` = input + cache-read + cache-creation tokens (every
prompt token the model processed, as OpenAI's `prompt_tokens` includes its cached tokens; the
relay's pricing charges them all at the prompt rate, so the gateway never undercharges),
`cached_tokens` = cache-read tokens, `completion_tokens` = output tokens (thinking included).

Stream: the first chunk (at `message_start`) carries the role; text and `input_json_delta`
fragments follow (a tool call's first delta has its index, id and name); `message_delta`
gives the finish reason. `usage` is set once `message_delta` reports the final counts; a cut
stream, or one without usage, leaves it None for the relay to count from `text` (text, tool
arguments and thinking). The final usage chunk (`choices: []`) comes from `close()` when
`usage` is set and the request's `include_usage` holds. `error` events become `error`;
`ping` is ignored.

Errors: `{"type": "error", "error": {type, message}}` keeps Anthropic's type and message
(e.g. "Your credit balance is too low ..." for the health service); `authentication_error`
gets code `invalid_api_key` and a too-low credit balance code `insufficient_quota`, OpenAI's
codes for those cases. OpenAI-shaped bodies (a proxy in front) are read too; HTML, plain-text
and empty bodies give a one-line message naming the status.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from libs.providers.base import (
    Adaptor,
    ChannelInfo,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    Usage,
)
from libs.providers.conversion import (
    content_text,
    describe_non_json,
    one_line,
    parse_data_url,
    sse_json,
    tool_arguments,
)
from libs.providers.errors import UnsupportedModeError
from libs.providers.openai_format import chat_chunk, chat_completion, new_completion_id

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
#: Sent when the request names no output limit; Anthropic requires one.
DEFAULT_MAX_TOKENS = 4096

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: HTTP status of each Anthropic error type, for errors that arrive inside a stream or a 200.
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_TYPE_OF_STATUS = {status: type_ for type_, status in _STATUS_OF_TYPE.items()}


class AnthropicAdaptor(Adaptor):
    """Claude through Anthropic's Messages API; chat only."""

    modes = frozenset({Mode.CHAT})

    # --- request ---------------------------------------------------------------------------

    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        if request.mode is not Mode.CHAT:
            raise UnsupportedModeError(f"Anthropic channels do not serve {request.mode.value}")
        base = (channel.base_url or DEFAULT_BASE_URL).rstrip("/")
        if base.endswith("/v1"):  # a base URL configured with the version in it
            base = base[: -len("/v1")]
        headers = {
            "x-api-key": channel.key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream" if request.stream else "application/json",
        }
        beta = _beta_header(channel.config.get("anthropic_beta"))
        if beta:
            headers["anthropic-beta"] = beta
        body = messages_request(request.model, request.body, stream=request.stream)
        return UpstreamRequest("POST", base + "/v1/messages", headers, orjson.dumps(body))

    # --- answers ---------------------------------------------------------------------------

    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                502, "Anthropic answered with a body that is not JSON", type="api_error"
            ) from None
        if not isinstance(message, dict):
            raise UpstreamError(502, "Anthropic answered with an unexpected body", type="api_error")
        embedded = _embedded_error(message)
        if embedded is not None:
            raise embedded
        text: list[str] = []
        thinking: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in message.get("content") or []:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                text.append(str(block.get("text") or ""))
            elif kind == "thinking":
                thinking.append(str(block.get("thinking") or ""))
            elif kind == "tool_use":
                tool_calls.append(
                    {
                        "id": str(block.get("id") or ""),
                        "type": "function",
                        "function": {
                            "name": str(block.get("name") or ""),
                            "arguments": orjson.dumps(block.get("input") or {}).decode(),
                        },
                    }
                )
        reply: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(text) if text or not tool_calls else None,
        }
        if tool_calls:
            reply["tool_calls"] = tool_calls
        if thinking:
            reply["reasoning_content"] = "".join(thinking)
        usage = usage_of(message.get("usage"))
        answer = chat_completion(
            completion_id=_completion_id(message.get("id")),
            model=str(message.get("model") or request.model),
            message=reply,
            finish_reason=finish_reason(message.get("stop_reason")) or "stop",
            usage=usage or Usage(),
        )
        if usage is None:  # no made-up zeros: the relay counts
            answer = orjson.dumps({k: v for k, v in orjson.loads(answer).items() if k != "usage"})
        return answer, usage

    def stream_decoder(self, request: RelayRequest) -> StreamDecoder:
        return AnthropicStreamDecoder(request.model, include_usage=request.include_usage)

    def read_error(self, status: int, body: bytes) -> UpstreamError:
        stripped = body.strip()
        if not stripped:
            return UpstreamError(
                status,
                f"Anthropic answered HTTP {status} with an empty body",
                type=_TYPE_OF_STATUS.get(status, _fallback_type(status)),
            )
        try:
            payload = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return UpstreamError(
                status,
                describe_non_json("Anthropic", status, stripped),
                type=_fallback_type(status),
            )
        error = _error_of(status, payload)
        if error is not None:
            return error
        return UpstreamError(
            status,
            f"Anthropic answered HTTP {status} without an error message",
            type=_fallback_type(status),
        )

    def default_models(self) -> tuple[str, ...]:
        return (
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "claude-3-7-sonnet-latest",
            "claude-3-5-haiku-latest",
        )


# --- request conversion -----------------------------------------------------------------------


def messages_request(model: str, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """An OpenAI chat-completions body as a Messages API body (see the module docstring)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = content_text(content)
            if text:
                system.append(text)
        elif role == "user":
            add("user", _user_blocks(content))
        elif role == "assistant":
            blocks = _user_blocks(content, images=False)
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": str(call.get("id") or ""),
                            "name": str(call["function"].get("name") or ""),
                            "input": _arguments(call["function"].get("arguments")),
                        }
                    )
            legacy = message.get("function_call")
            if isinstance(legacy, dict) and legacy.get("name"):
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": str(legacy["name"]),
                        "name": str(legacy["name"]),
                        "input": _arguments(legacy.get("arguments")),
                    }
                )
            add("assistant", blocks)
        elif role in ("tool", "function"):
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or message.get("name") or ""),
            }
            text = content_text(content)
            if text:
                result["content"] = text
            add("user", [result])

    if turns and turns[-1]["role"] == "assistant":
        _strip_trailing_whitespace(turns)

    out: dict[str, Any] = {"model": model, "messages": turns}
    if system:
        out["system"] = "\n".join(system)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = max_tokens if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s.strip()]
    if stops:
        out["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice", body.get("function_call")))
        if body.get("parallel_tool_calls") is False:
            choice = choice or {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


def _user_blocks(content: Any, *, images: bool = True) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif kind == "image_url" and images:
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                blocks.append({"type": "image", "source": _image_source(url)})
        elif kind == "file" and images:
            file = part.get("file")
            data = parse_data_url(
                str(file.get("file_data") or "") if isinstance(file, dict) else ""
            )
            if data is not None and data[0] == "application/pdf":
                source = {"type": "base64", "media_type": data[0], "data": data[1]}
                blocks.append({"type": "document", "source": source})
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    data = parse_data_url(url)
    if data is None:
        return {"type": "url", "url": url}
    return {"type": "base64", "media_type": data[0], "data": data[1]}


def _arguments(raw: Any) -> dict[str, Any]:
    return tool_arguments(raw)


def _strip_trailing_whitespace(turns: list[dict[str, Any]]) -> None:
    blocks = turns[-1]["content"]
    if blocks and blocks[-1].get("type") == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1] = {**blocks[-1], "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    functions: list[Any] = [
        tool.get("function")
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type", "function") == "function"
    ]
    if not functions:
        functions = list(body.get("functions") or [])
    tools: list[dict[str, Any]] = []
    for function in functions:
        if not isinstance(function, dict) or not function.get("name"):
            continue
        schema = function.get("parameters")
        tool: dict[str, Any] = {
            "name": str(function["name"]),
            "input_schema": schema
            if isinstance(schema, dict) and schema
            else {"type": "object", "properties": {}},
        }
        if function.get("description"):
            tool["description"] = str(function["description"])
        tools.append(tool)
    return tools


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice in ("required", "any"):
        return {"type": "any"}
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if name:
            return {"type": "tool", "name": str(name)}
    return None


def _beta_header(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ",".join(str(v).strip() for v in value if str(v).strip())
    return ""


# --- answer conversion ------------------------------------------------------------------------


def finish_reason(stop_reason: Any) -> str | None:
    """An Anthropic `stop_reason` as an OpenAI `finish_reason` (None while there is none)."""
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(str(stop_reason), "stop")


def usage_of(raw: Any) -> Usage | None:
    """Anthropic's usage as OpenAI's counts (see the module docstring for cache tokens)."""
    if not isinstance(raw, dict):
        return None

    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    cache_read = count("cache_read_input_tokens")
    return Usage(
        prompt_tokens=count("input_tokens") + cache_read + count("cache_creation_input_tokens"),
        completion_tokens=count("output_tokens"),
        cached_tokens=cache_read,
    )


def _completion_id(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id
    return new_completion_id()


class AnthropicStreamDecoder(StreamDecoder):
    """Messages API SSE events -> OpenAI `chat.completion.chunk`s."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self.usage = None
        self.error = None
        self._include_usage = include_usage
        self._id = new_completion_id()
        self._model = model
        self._created = int(time.time())
        self._pieces: list[str] = []
        self._raw_usage: dict[str, Any] = {}
        self._usage_sent = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._ended = False

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
        return chat_chunk(
            completion_id=self._id,
            model=self._model,
            created=self._created,
            delta=delta,
            finish_reason=finish,
        )

    def feed(self, line: bytes) -> Iterable[bytes]:
        if self._ended:
            return ()
        payload = _sse_payload(line)
        if payload is None:
            return ()
        kind = payload.get("type")
        if kind == "message_start":
            return self._message_start(payload.get("message"))
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_delta":
            return self._block_delta(payload)
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            self._ended = True
        elif kind == "error" or "error" in payload:
            self.error = _embedded_error(payload) or UpstreamError(
                500, "Anthropic sent an unreadable error in the stream", type="api_error"
            )
            self._ended = True
        return ()  # ping, content_block_stop, message_stop, unknown events

    def close(self) -> Iterable[bytes]:
        if self.usage is None or self._usage_sent or not self._include_usage:
            return ()
        self._usage_sent = True
        return (
            chat_chunk(
                completion_id=self._id,
                model=self._model,
                created=self._created,
                usage=self.usage,
            ),
        )

    def _message_start(self, message: Any) -> list[bytes]:
        if isinstance(message, dict):
            if isinstance(message.get("id"), str) and message["id"]:
                self._id = "chatcmpl-" + message["id"]
            if isinstance(message.get("model"), str) and message["model"]:
                self._model = message["model"]
            if isinstance(message.get("usage"), dict):
                self._raw_usage.update(message["usage"])
        # no `content` yet: an answer that is only a tool call keeps a null content
        return [self._chunk({"role": "assistant"})]

    def _block_start(self, payload: dict[str, Any]) -> list[bytes]:
        block = payload.get("content_block")
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use":
            index = len(self._tool_index)
            self._tool_index[_int(payload.get("index"))] = index
            call = {
                "index": index,
                "id": str(block.get("id") or ""),
                "type": "function",
                "function": {"name": str(block.get("name") or ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            self._pieces.append(str(block["text"]))
            return [self._chunk({"content": str(block["text"])})]
        return []

    def _block_delta(self, payload: dict[str, Any]) -> list[bytes]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text") or "")
            if not text:
                return []
            self._pieces.append(text)
            return [self._chunk({"content": text})]
        if kind == "input_json_delta":
            fragment = str(delta.get("partial_json") or "")
            index = self._tool_index.get(_int(payload.get("index")))
            if not fragment or index is None:
                return []
            self._pieces.append(fragment)
            call = {"index": index, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta":
            thinking = str(delta.get("thinking") or "")
            if not thinking:
                return []
            self._pieces.append(thinking)
            return [self._chunk({"reasoning_content": thinking})]
        return []  # signature_delta, citations_delta

    def _message_delta(self, payload: dict[str, Any]) -> list[bytes]:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._raw_usage.update({k: v for k, v in usage.items() if v is not None})
            self.usage = usage_of(self._raw_usage)
        delta = payload.get("delta")
        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
        finish = finish_reason(stop)
        if finish is None:
            return []
        return [self._chunk({}, finish)]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _sse_payload(line: bytes) -> dict[str, Any] | None:
    payload = sse_json(line)
    return payload if isinstance(payload, dict) else None


# --- errors -----------------------------------------------------------------------------------


def _fallback_type(status: int) -> str:
    if status in _TYPE_OF_STATUS:
        return _TYPE_OF_STATUS[status]
    return "api_error" if status >= 500 else "upstream_error"


def _error_of(status: int, payload: Any) -> UpstreamError | None:
    """The error an Anthropic (or OpenAI-shaped) error body describes."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, str) and error:
        return UpstreamError(status, one_line(error), type=_fallback_type(status))
    if not isinstance(error, dict):
        message = payload.get("message")
        if isinstance(message, str) and message:
            return UpstreamError(status, one_line(message), type=_fallback_type(status))
        return None
    error_type = error.get("type")
    error_type = (
        error_type if isinstance(error_type, str) and error_type else _fallback_type(status)
    )
    message = error.get("message")
    message = (
        one_line(message)
        if isinstance(message, str) and message.strip()
        else f"Anthropic answered HTTP {status} with error type {error_type}"
    )
    code = error.get("code")
    if not isinstance(code, str | int) or isinstance(code, bool):
        code = None
    if code is None:
        if error_type == "authentication_error":
            code = "invalid_api_key"
        elif "credit balance is too low" in message.lower():
            code = "insufficient_quota"
    param = error.get("param")
    return UpstreamError(
        status,
        message,
        type=error_type,
        code=code,
        param=param if isinstance(param, str) else None,
    )


def _embedded_error(payload: dict[str, Any]) -> UpstreamError | None:
    """An error inside a success answer or a stream event, with the status its type names."""
    error = payload.get("error")
    if payload.get("type") != "error" and not error:
        return None
    error_type = error.get("type") if isinstance(error, dict) else None
    status = _STATUS_OF_TYPE.get(str(error_type), 500)
    return _error_of(status, payload) or UpstreamError(
        status, "Anthropic sent an error without a message", type="api_error"
    )


__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdaptor",
    "AnthropicStreamDecoder",
    "finish_reason",
    "messages_request",
    "parse_data_url",
    "usage_of",
]
