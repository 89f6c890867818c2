"""Google's Gemini API (channel type 24): OpenAI chat and embeddings <-> `generateContent`.

URL: `{base}/{version}/models/{model}:generateContent` (`:streamGenerateContent?alt=sse` for
streams, `:embedContent` for one input string, `:batchEmbedContents` for a list). The key goes
in the `x-goog-api-key` header, never in the URL (URLs get logged). The version is, first
match wins: the channel config's `api_version`; the channel's `other` field (One API keeps the
Gemini version there); `v1beta` when the model is of a family One API sends there (gemini-1.5,
gemini-2 and later, gemma, learnlm, gemini-embedding) or the request uses a field that only
v1beta takes in practice (system instruction, tools, JSON response mode); else the adaptor's
`version` (the `GEMINI_VERSION` setting, `v1` by default).

Request:

- `system`/`developer` messages, joined with a newline -> `systemInstruction`. Legacy models
  that refuse it (gemini-1.0) are retired, so One API's "system as a user turn + Okay" trick
  is not reproduced.
- roles user/assistant -> user/model; consecutive contents of one role are merged. Tool (and
  legacy `function`) results -> `functionResponse` parts of a user content, named after the
  assistant tool call with the same id (else the message's `name`, else the id), with
  `response: {"name": ..., "content": ...}` where content is the parsed JSON when the result
  is a JSON object or array, else the text. Assistant `tool_calls` -> `functionCall` parts.
- images: a `data:` URL -> `inlineData {mimeType, data}`; any other URL -> `fileData
  {fileUri, mimeType guessed from the extension}`. The relay never fetches on the hot path:
  Gemini reads file URIs it can reach (its Files API, YouTube and, for recent models, public
  URLs) and answers with its own 400 for the rest. `input_audio` -> `inlineData audio/<fmt>`;
  a `file` part with a `data:` URL -> `inlineData`.
- `generationConfig`: temperature, top_p -> topP, top_k -> topK, max_completion_tokens or
  max_tokens -> maxOutputTokens, stop -> stopSequences, n > 1 -> candidateCount,
  presence/frequency penalties, seed; `response_format` json_object -> responseMimeType
  `application/json`, json_schema -> that plus a cleaned `responseSchema`.
- `safetySettings`: the four categories every Gemini model takes (harassment, hate speech,
  sexually explicit, dangerous content) at `safety_setting`. Civic integrity is left out:
  models accept it inconsistently and a rejected category fails the whole request.
- tools -> `tools: [{functionDeclarations}]` whose parameters keep only the OpenAPI subset
  Gemini accepts (`clean_schema`: `$schema`, `additionalProperties`, `$defs` and the like go,
  local `$ref`s are inlined, `["x", "null"]` types and null `anyOf` members become
  `nullable`); an object without properties sends no `parameters` (Gemini rejects empty
  ones). tool_choice auto/none/required/named -> `toolConfig.functionCallingConfig` mode
  AUTO/NONE/ANY (+ `allowedFunctionNames`).

Answer: each candidate is a choice; text parts joined (`thought` parts -> `reasoning_content`),
`functionCall` parts -> `tool_calls` with ids `call_<hex>` (Gemini's own id when it sends
one) and compact JSON arguments. finishReason STOP -> stop (tool_calls when the candidate
called a tool), MAX_TOKENS -> length, SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII,
IMAGE_SAFETY -> content_filter, anything else -> stop. A prompt blocked by `promptFeedback`
is answered, not raised: an empty assistant message with `refusal` naming the block reason
and finish_reason content_filter, in streams and non-streams alike (a stream's 200 is sent
before the block is known, and a blocked prompt is the user's, not the channel's, failure).
Usage: prompt = promptTokenCount (+ toolUsePromptTokenCount); completion =
candidatesTokenCount + thoughtsTokenCount (thoughts are billed as output), with the thoughts
also as reasoning_tokens; cachedContentTokenCount -> cached_tokens (part of the prompt count).
Without usageMetadata the usage is None and the body has no `usage`.

Stream: every SSE chunk carries the cumulative usage; the decoder emits content, tool-call
and finish chunks as they come. `usage` is the last usageMetadata, set only once a
finishReason (or a prompt block) was seen: a cut stream leaves it None. `close()` adds one
usage chunk (`choices: []`) when `usage` is set and the request's `include_usage` holds.
`{"error": ...}` frames become `error`.

Embeddings: OpenAI's list with one item per input, float or `encoding_format: base64`
(little-endian float32), `dimensions` -> outputDimensionality. Gemini reports no usage: the
answer's usage is None for the relay to count, and the body's usage fields are 0.

Errors `{"error": {code, message, status, details}}`: type = the status (INVALID_ARGUMENT,
RESOURCE_EXHAUSTED, ...), code = the ErrorInfo reason when there is one. A bad key, which
Gemini answers with 400 INVALID_ARGUMENT + reason API_KEY_INVALID, becomes HTTP 401 type
`authentication_error` code `invalid_api_key`, so that the relay and the health service treat
it as the channel's credential failure rather than a client mistake.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import struct
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
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
from libs.providers.errors import InvalidRequestError, UnsupportedModeError
from libs.providers.openai_format import new_completion_id, usage_object

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
HARM_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
#: Model families One API (and Google's docs) address through v1beta.
_V1BETA_MODELS = re.compile(
    r"gemini-(?:1\.5|[2-9]|\d{2,}|exp|embedding)|gemma-|learnlm", re.IGNORECASE
)
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
#: The OpenAPI-subset keys Gemini's `Schema` accepts; every other JSON-schema key is dropped.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "propertyOrdering",
    }
)
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_MAX_SCHEMA_DEPTH = 32
_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})
_STATUS_TYPES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GeminiAdaptor(Adaptor):
    """Gemini through Google AI Studio's REST API; chat and embeddings."""

    modes = frozenset({Mode.CHAT, Mode.EMBEDDINGS})

    def __init__(self, *, version: str = "v1", safety_setting: str = "BLOCK_NONE") -> None:
        self.version = version.strip() or "v1"
        self.safety_setting = safety_setting.strip()

    # --- request ---------------------------------------------------------------------------

    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        model = request.model.removeprefix("models/")
        if request.mode is Mode.CHAT:
            body = content_request(request.body, safety_setting=self.safety_setting)
            needs_beta = _needs_v1beta(body)
            action = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        elif request.mode is Mode.EMBEDDINGS:
            action, body = embedding_request(model, request.body)
            needs_beta = False
        else:
            raise UnsupportedModeError(f"Gemini channels do not serve {request.mode.value}")
        version = self.resolve_version(channel, model, needs_beta=needs_beta)
        base = (channel.base_url or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base}/{version}/models/{urllib.parse.quote(model, safe='')}:{action}"
        headers = {"x-goog-api-key": channel.key, "content-type": "application/json"}
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def resolve_version(self, channel: ChannelInfo, model: str, *, needs_beta: bool) -> str:
        """The API version for `model` on `channel` (see the module docstring)."""
        configured = channel.config.get("api_version")
        if isinstance(configured, str) and configured.strip():
            return configured.strip()
        if channel.other.strip():
            return channel.other.strip()
        if needs_beta or _V1BETA_MODELS.search(model):
            return "v1beta"
        return self.version

    # --- answers ---------------------------------------------------------------------------

    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                502, "Gemini answered with a body that is not JSON", type="INTERNAL"
            ) from None
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if not isinstance(payload, dict):
            raise UpstreamError(502, "Gemini answered with an unexpected body", type="INTERNAL")
        embedded = _embedded_error(payload)
        if embedded is not None:
            raise embedded
        if request.mode is Mode.EMBEDDINGS:
            return _embedding_response(request, payload), None
        return _chat_response(request, payload)

    def stream_decoder(self, request: RelayRequest) -> StreamDecoder:
        return GeminiStreamDecoder(request.model, include_usage=request.include_usage)

    def read_error(self, status: int, body: bytes) -> UpstreamError:
        stripped = body.strip()
        if not stripped:
            return UpstreamError(
                status,
                f"Gemini answered HTTP {status} with an empty body",
                type=_fallback_type(status),
            )
        try:
            payload = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return UpstreamError(
                status, describe_non_json("Gemini", status, stripped), type=_fallback_type(status)
            )
        return _error_of(status, payload) or UpstreamError(
            status,
            f"Gemini answered HTTP {status} without an error message",
            type=_fallback_type(status),
        )

    def default_models(self) -> tuple[str, ...]:
        return (
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-2.0-flash",
            "gemini-embedding-001",
        )


# --- request conversion -----------------------------------------------------------------------


def content_request(body: dict[str, Any], *, safety_setting: str) -> dict[str, Any]:
    """An OpenAI chat-completions body as a generateContent body (see the module docstring)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

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
            add("user", _parts(content))
        elif role == "assistant":
            parts = _parts(content, media=False)
            calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
            legacy = message.get("function_call")
            if isinstance(legacy, dict):
                calls.append({"id": legacy.get("name"), "function": legacy})
            for call in calls:
                function = call.get("function")
                if not isinstance(function, dict) or not function.get("name"):
                    continue
                name = str(function["name"])
                if call.get("id"):
                    call_names[str(call["id"])] = name
                parts.append({"functionCall": {"name": name, "args": _arguments(function)}})
            add("model", parts)
        elif role in ("tool", "function"):
            call_id = str(message.get("tool_call_id") or "")
            name = call_names.get(call_id) or str(message.get("name") or call_id or "function")
            response = {"name": name, "content": _result_value(content_text(content))}
            add("user", [{"functionResponse": {"name": name, "response": response}}])

    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
    if safety_setting:
        out["safetySettings"] = [
            {"category": category, "threshold": safety_setting} for category in HARM_CATEGORIES
        ]
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    declarations = _declarations(body)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice", body.get("function_call")))
        if tool_config is not None:
            out["toolConfig"] = {"functionCallingConfig": tool_config}
    return out


def _needs_v1beta(body: dict[str, Any]) -> bool:
    config = body.get("generationConfig") or {}
    return bool(
        "systemInstruction" in body
        or "tools" in body
        or "responseMimeType" in config
        or "responseSchema" in config
    )


def _parts(content: Any, *, media: bool = True) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        elif not media:
            continue
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                parts.append(_media_part(url))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            if isinstance(audio, dict) and audio.get("data"):
                mime = "audio/" + str(audio.get("format") or "wav")
                parts.append({"inlineData": {"mimeType": mime, "data": str(audio["data"])}})
        elif kind == "file":
            file = part.get("file")
            url = str(file.get("file_data") or "") if isinstance(file, dict) else ""
            data = parse_data_url(url)
            if data is not None:
                parts.append({"inlineData": {"mimeType": data[0], "data": data[1]}})
    return parts


def _media_part(url: str) -> dict[str, Any]:
    data = parse_data_url(url)
    if data is not None:
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    file_data: dict[str, Any] = {"fileUri": url}
    mime, _ = mimetypes.guess_type(urllib.parse.urlsplit(url).path)
    if mime:
        file_data["mimeType"] = mime
    return {"fileData": file_data}


def _arguments(function: Mapping[str, Any]) -> dict[str, Any]:
    return tool_arguments(function.get("arguments"))


def _result_value(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
    return text


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if stops:
        config["stopSequences"] = stops
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        config["candidateCount"] = n
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            config["responseMimeType"] = "application/json"
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if isinstance(schema, dict) and schema:
                config["responseSchema"] = clean_schema(schema)
    return config


def _declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    functions: list[Any] = [
        tool.get("function")
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type", "function") == "function"
    ]
    if not functions:
        functions = list(body.get("functions") or [])
    declarations: list[dict[str, Any]] = []
    for function in functions:
        if not isinstance(function, dict) or not function.get("name"):
            continue
        declaration: dict[str, Any] = {"name": str(function["name"])}
        if function.get("description"):
            declaration["description"] = str(function["description"])
        parameters = clean_schema(function.get("parameters"))
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice in ("required", "any"):
        return {"mode": "ANY"}
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if name:
            return {"mode": "ANY", "allowedFunctionNames": [str(name)]}
    return None


def clean_schema(schema: Any, definitions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON schema reduced to the OpenAPI subset Gemini's `Schema` accepts."""
    if not isinstance(schema, dict):
        return {}
    if definitions is None:
        definitions = {}
        for key in ("definitions", "$defs"):
            found = schema.get(key)
            if isinstance(found, dict):
                definitions = {**definitions, **found}
    return _clean(schema, definitions, 0)


def _clean(schema: dict[str, Any], definitions: Mapping[str, Any], depth: int) -> dict[str, Any]:
    if depth > _MAX_SCHEMA_DEPTH:  # a recursive $ref: stop with an open object
        return {"type": "object"}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = definitions.get(ref.rsplit("/", 1)[-1])
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **rest} if isinstance(target, dict) else rest
        return _clean(merged, definitions, depth + 1)

    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if isinstance(k, str) and k != "null"]
        if len(concrete) < len(kind):
            out["nullable"] = True
        kind = concrete[0] if concrete else None
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind
    variants = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(variants, list):
        cleaned: list[dict[str, Any]] = []
        for variant in variants:
            if isinstance(variant, dict) and variant.get("type") == "null":
                out["nullable"] = True
            elif isinstance(variant, dict):
                cleaned.append(_clean(variant, definitions, depth + 1))
        if len(cleaned) == 1:
            out = {**cleaned[0], **out}
        elif cleaned:
            out["anyOf"] = cleaned
    for part in schema.get("allOf") or []:
        if isinstance(part, dict):
            out = {**_clean(part, definitions, depth + 1), **out}
    if isinstance(schema.get("const"), str):
        out["enum"] = [schema["const"]]

    for key, value in schema.items():
        if key not in _SCHEMA_KEYS or key in ("type", "anyOf", "required"):
            continue
        if key == "properties":
            if isinstance(value, dict) and value:
                out["properties"] = {
                    str(name): _clean(
                        prop if isinstance(prop, dict) else {}, definitions, depth + 1
                    )
                    for name, prop in value.items()
                }
        elif key == "items":
            item = value[0] if isinstance(value, list) and value else value
            if isinstance(item, dict):
                out["items"] = _clean(item, definitions, depth + 1)
        elif key == "enum":
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                out["enum"] = value
        elif key == "format":
            allowed = _FORMATS.get(str(out.get("type", "")).lower(), frozenset())
            if value in allowed:
                out["format"] = value
        else:
            out[key] = value
    required = schema.get("required")
    properties = out.get("properties") or {}
    if isinstance(required, list):
        kept = [name for name in required if isinstance(name, str) and name in properties]
        if kept:
            out["required"] = kept
    return out


def embedding_request(model: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The action and body for an OpenAI embeddings request: one string or a list of strings."""
    source = body.get("input")
    dimensions = body.get("dimensions")

    def one(text: str) -> dict[str, Any]:
        item: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if isinstance(dimensions, int) and dimensions > 0:
            item["outputDimensionality"] = dimensions
        return item

    if isinstance(source, str):
        return "embedContent", one(source)
    if isinstance(source, list) and source and all(isinstance(s, str) for s in source):
        return "batchEmbedContents", {"requests": [one(s) for s in source]}
    raise InvalidRequestError(
        "Gemini embeddings take text input (a string or a non-empty list of strings), "
        "not token arrays"
    )


# --- answer conversion ------------------------------------------------------------------------


def usage_of(meta: Any) -> Usage | None:
    """Gemini's usageMetadata as OpenAI's counts (see the module docstring)."""
    if not isinstance(meta, dict):
        return None

    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    thoughts = count("thoughtsTokenCount")
    return Usage(
        prompt_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        completion_tokens=count("candidatesTokenCount") + thoughts,
        cached_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def finish_reason(reason: Any, *, called_tool: bool = False) -> str:
    """A Gemini finishReason as an OpenAI finish_reason."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called_tool else "stop"


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _read_parts(candidate: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """A candidate's text, thought text and tool calls (OpenAI shape, without index)."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            call_id = call.get("id")
            calls.append(
                {
                    "id": str(call_id) if call_id else _new_call_id(),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    return "".join(text), "".join(thoughts), calls


def _block_message(payload: dict[str, Any]) -> str | None:
    feedback = payload.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    detail = feedback.get("blockReasonMessage") if isinstance(feedback, dict) else None
    message = f"Gemini blocked the prompt ({reason})"
    return f"{message}: {detail}" if isinstance(detail, str) and detail else message


def _completion_id(payload: dict[str, Any]) -> str:
    response_id = payload.get("responseId")
    if isinstance(response_id, str) and response_id:
        return "chatcmpl-" + response_id
    return new_completion_id()


def _chat_response(request: RelayRequest, payload: dict[str, Any]) -> tuple[bytes, Usage | None]:
    choices: list[dict[str, Any]] = []
    candidates = [c for c in payload.get("candidates") or [] if isinstance(c, dict)]
    for position, candidate in enumerate(candidates):
        text, thoughts, calls = _read_parts(candidate)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message["reasoning_content"] = thoughts
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else position,
                "message": message,
                "finish_reason": finish_reason(
                    candidate.get("finishReason"), called_tool=bool(calls)
                ),
            }
        )
    if not choices:
        blocked = _block_message(payload)
        if blocked is None:
            raise UpstreamError(502, "Gemini answered without candidates", type="INTERNAL")
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "refusal": blocked},
                "finish_reason": "content_filter",
            }
        )
    usage = usage_of(payload.get("usageMetadata"))
    model = payload.get("modelVersion")
    out: dict[str, Any] = {
        "id": _completion_id(payload),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) and model else request.model,
        "choices": choices,
    }
    if usage is not None:
        out["usage"] = usage_object(usage)
    return orjson.dumps(out), usage


def _embedding_response(request: RelayRequest, payload: dict[str, Any]) -> bytes:
    if isinstance(payload.get("embedding"), dict):
        items: list[Any] = [payload["embedding"]]
    else:
        items = [e for e in payload.get("embeddings") or [] if isinstance(e, dict)]
    as_base64 = request.body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        values = [float(v) for v in item.get("values") or []]
        vector: Any = (
            base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            if as_base64
            else values
        )
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": request.model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
    )


class GeminiStreamDecoder(StreamDecoder):
    """streamGenerateContent SSE chunks -> OpenAI `chat.completion.chunk`s."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self.usage = None
        self.error = None
        self._include_usage = include_usage
        self._id = new_completion_id()
        self._model = model
        self._created = int(time.time())
        self._started = False
        self._pieces: list[str] = []
        self._with_role: set[int] = set()
        self._tool_count: dict[int, int] = {}
        self._finished: set[int] = set()
        self._meta: dict[str, Any] | None = None
        self._ended = False
        self._usage_sent = False

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }
        )

    def _role(self, index: int, delta: dict[str, Any]) -> dict[str, Any]:
        if index not in self._with_role:
            self._with_role.add(index)
            return {"role": "assistant", **delta}
        return delta

    def feed(self, line: bytes) -> Iterable[bytes]:
        if self._ended:
            return ()
        payload = _sse_payload(line)
        if payload is None:
            return ()
        if "error" in payload:
            self.error = _embedded_error(payload) or UpstreamError(
                500, "Gemini sent an unreadable error in the stream", type="INTERNAL"
            )
            self._ended = True
            return ()
        if not self._started:
            self._started = True
            self._id = _completion_id(payload)
            if isinstance(payload.get("modelVersion"), str) and payload["modelVersion"]:
                self._model = payload["modelVersion"]
        if isinstance(payload.get("usageMetadata"), dict):
            self._meta = payload["usageMetadata"]
        out: list[bytes] = []
        candidates = [c for c in payload.get("candidates") or [] if isinstance(c, dict)]
        blocked = _block_message(payload) if not candidates else None
        if blocked is not None and 0 not in self._finished:
            self._finished.add(0)
            delta = self._role(0, {"content": "", "refusal": blocked})
            out.append(self._chunk(0, delta, "content_filter"))
        for position, candidate in enumerate(candidates):
            index = candidate.get("index")
            index = index if isinstance(index, int) else position
            out.extend(self._candidate(index, candidate))
        if self._finished and self._meta is not None:
            self.usage = usage_of(self._meta)
        return out

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[bytes]:
        text, thoughts, calls = _read_parts(candidate)
        delta: dict[str, Any] = {}
        if thoughts:
            self._pieces.append(thoughts)
            delta["reasoning_content"] = thoughts
        if text:
            self._pieces.append(text)
            delta["content"] = text
        if calls:
            first = self._tool_count.get(index, 0)
            self._tool_count[index] = first + len(calls)
            delta["tool_calls"] = [{"index": first + i, **call} for i, call in enumerate(calls)]
            self._pieces.extend(call["function"]["arguments"] for call in calls)
        out: list[bytes] = []
        reason = candidate.get("finishReason")
        if delta or (index not in self._with_role and reason):
            out.append(self._chunk(index, self._role(index, delta)))
        if reason and index not in self._finished:
            self._finished.add(index)
            finish = finish_reason(reason, called_tool=self._tool_count.get(index, 0) > 0)
            out.append(self._chunk(index, {}, finish))
        return out

    def close(self) -> Iterable[bytes]:
        if self.usage is None or self._usage_sent or not self._include_usage:
            return ()
        self._usage_sent = True
        return (
            orjson.dumps(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": usage_object(self.usage),
                }
            ),
        )


def _sse_payload(line: bytes) -> dict[str, Any] | None:
    payload = sse_json(line)
    if isinstance(payload, list) and payload:
        payload = payload[0]  # a JSON array (no alt=sse): its first element
    return payload if isinstance(payload, dict) else None


# --- errors -----------------------------------------------------------------------------------


def _fallback_type(status: int) -> str:
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "INTERNAL" if status >= 500 else "upstream_error"


def _error_of(status: int, payload: Any) -> UpstreamError | None:
    """The error a Gemini (or OpenAI-shaped) error body describes."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, str) and error:
        return UpstreamError(status, one_line(error), type=_fallback_type(status))
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    message = (
        one_line(message)
        if isinstance(message, str) and message.strip()
        else f"Gemini answered HTTP {status} without an error message"
    )
    reasons = [
        str(detail.get("reason"))
        for detail in error.get("details") or []
        if isinstance(detail, dict) and detail.get("reason")
    ]
    reason = reasons[0] if reasons else None
    lowered = message.lower()
    if (reason in _KEY_REASONS) or "api key not valid" in lowered or "api key expired" in lowered:
        return UpstreamError(401, message, type="authentication_error", code="invalid_api_key")
    grpc_status = error.get("status")
    if isinstance(grpc_status, str) and grpc_status:
        error_type = grpc_status
    elif isinstance(error.get("type"), str) and error["type"]:  # an OpenAI-shaped body
        error_type = error["type"]
    else:
        error_type = _fallback_type(status)
    code = reason or (error.get("code") if isinstance(error.get("code"), str) else None)
    return UpstreamError(status, message, type=error_type, code=code)


def _embedded_error(payload: dict[str, Any]) -> UpstreamError | None:
    """An error inside a success answer or a stream frame, with the status its code names."""
    error = payload.get("error")
    if not error:
        return None
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and not isinstance(code, bool) and code >= 400 else 500
    return _error_of(status, payload) or UpstreamError(
        status, "Gemini sent an error without a message", type="INTERNAL"
    )


__all__ = [
    "DEFAULT_BASE_URL",
    "HARM_CATEGORIES",
    "GeminiAdaptor",
    "GeminiStreamDecoder",
    "clean_schema",
    "content_request",
    "embedding_request",
    "finish_reason",
    "parse_data_url",
    "usage_of",
]
