"""Fake Google Gemini API (``/v1beta|v1/models/{model}:method``), after the Gemini API reference.

``:generateContent``, ``:streamGenerateContent`` (``?alt=sse``: SSE frames separated by
CRLF CRLF, no ``[DONE]``; without it a JSON array streamed piecewise), ``:embedContent``,
``:batchEmbedContents``, ``:countTokens`` and the models list. Keys come as ``?key=`` or
``x-goog-api-key``; a bad key is a 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``
and a missing key a 403 ``PERMISSION_DENIED``, as the real API answers. Contents use roles
``user``/``model``, ``systemInstruction``, ``tools[].functionDeclarations`` -> ``functionCall``
parts, ``usageMetadata`` (cumulative in every stream chunk; zero counts omitted as proto3
JSON does), ``finishReason`` and safety blocks (``promptFeedback.blockReason``, ``SAFETY``).
Errors: ``{"error": {"code", "message", "status", "details"}}``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import orjson
from aiohttp import web

from tests.fakes.core import (
    EMBEDDING_DIM,
    NORMAL,
    ErrorKind,
    ErrorSpec,
    Exchange,
    FakeState,
    Generation,
    Outcome,
    Provider,
    ToolDef,
    Turn,
    build_app,
    count_words,
    embedding_vector,
    exchange_of,
    generate,
    json_response,
    raw_json_response,
    send_stream,
    sse,
    wants_tool,
)

DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "text-embedding-004")

_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_request": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "authentication": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    "permission": (403, "PERMISSION_DENIED", "The caller does not have permission"),
    "not_found": (404, "NOT_FOUND", "Requested entity was not found."),
    "rate_limit": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "insufficient_quota": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing "
        "details. For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    "context_length": (
        400,
        "INVALID_ARGUMENT",
        "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
    ),
    "server_error": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}
_HARM = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
CRLF = b"\r\n"


def safety_ratings(blocked: bool) -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = [{"category": c, "probability": "NEGLIGIBLE"} for c in _HARM]
    if blocked:
        ratings[-1] = {"category": _HARM[-1], "probability": "HIGH", "blocked": True}
    return ratings


def _parts_text(parts: Any) -> tuple[str, bool]:
    """Texts of ``parts`` (function responses as JSON) and whether one is a function response."""
    texts: list[str] = []
    function_response = False
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionResponse"), dict):
            function_response = True
            texts.append(json.dumps(part["functionResponse"].get("response", {})))
    return " ".join(texts), function_response


def content_turn(body: dict[str, Any], model: str) -> Turn:
    """A generateContent request as a provider-neutral turn."""
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    prompt_tokens = (
        count_words(_parts_text(system.get("parts"))[0]) if isinstance(system, dict) else 0
    )
    last_text = ""
    last_is_tool_result = False
    for content in body.get("contents") or []:
        if not isinstance(content, dict):
            continue
        text, function_response = _parts_text(content.get("parts"))
        prompt_tokens += count_words(text)
        if content.get("role", "user") in ("user", "function"):
            last_text, last_is_tool_result = text, function_response
    tools = [
        ToolDef(str(d.get("name", "")), d.get("parameters") or d.get("parametersJsonSchema") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict)
        for d in t.get("functionDeclarations") or t.get("function_declarations") or []
        if isinstance(d, dict)
    ]
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = str(config.get("mode", "AUTO")).upper()
    allowed = config.get("allowedFunctionNames") or []
    forced: str | bool = (str(allowed[0]) if allowed else True) if mode == "ANY" else False
    max_tokens = (body.get("generationConfig") or {}).get("maxOutputTokens")
    return Turn(
        model=model,
        prompt_tokens=prompt_tokens,
        last_text=last_text,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        tools=tools,
        forced_tool=forced,
        tools_disabled=mode == "NONE",
        last_is_tool_result=last_is_tool_result,
    )


def usage_metadata(gen: Generation, candidates: int) -> dict[str, Any]:
    """usageMetadata with ``candidates`` output tokens so far; zero counts are left out."""
    usage: dict[str, Any] = {"promptTokenCount": gen.prompt_tokens}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = gen.prompt_tokens + candidates + gen.reasoning_tokens
    if gen.cached_tokens:
        usage["cachedContentTokenCount"] = gen.cached_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": gen.prompt_tokens}]
    if gen.reasoning_tokens:
        usage["thoughtsTokenCount"] = gen.reasoning_tokens
    return usage


class GeminiProvider(Provider):
    name: ClassVar[str] = "gemini"

    def extract_key(self, request: web.Request) -> str | None:
        return request.query.get("key") or request.headers.get("x-goog-api-key") or None

    def describe(self, request: web.Request, body: Any) -> tuple[str | None, bool]:
        model, _, method = request.match_info.get("name", "").partition(":")
        return model or None, method == "streamGenerateContent"

    # --- errors ------------------------------------------------------------------------------
    def envelope(self, spec: ErrorSpec) -> tuple[int, dict[str, Any]]:
        status, code, default = _ERRORS[spec.kind]
        details: list[dict[str, Any]] = []
        if spec.kind == "authentication":
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if spec.kind == "insufficient_quota":
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                            "quotaValue": "250",
                        }
                    ],
                }
            )
        if spec.retry_after is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{round(spec.retry_after)}s",
                }
            )
        error: dict[str, Any] = {"code": status, "message": spec.message or default, "status": code}
        if details:
            error["details"] = details
        return status, {"error": error}

    def error_response(self, spec: ErrorSpec, ex: Exchange | None) -> web.Response:
        status, body = self.envelope(spec)
        return json_response(body, spec.status or status)

    def fail(self, kind: ErrorKind, message: str) -> web.Response:
        return self.error_response(ErrorSpec(kind, message), None)

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        if problem == "missing":
            return self.error_response(
                ErrorSpec(
                    "permission",
                    "Method doesn't allow unregistered callers (callers without "
                    "established identity). Please use API Key or other form of API consumer "
                    "identity to call this API.",
                ),
                ex,
            )
        return self.error_response(ErrorSpec("authentication"), ex)

    def invalid_json(self, ex: Exchange) -> web.Response:
        return self.fail("invalid_request", "Invalid JSON payload received. Unexpected token.")

    def stream_error_frame(self, spec: ErrorSpec) -> bytes:
        return sse(self.envelope(spec)[1], newline=CRLF)

    # --- routes ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        r = app.router
        for version in ("v1beta", "v1"):
            r.add_get(f"/{version}/models", self.list_models)
            r.add_get(f"/{version}/models/{{name}}", self.get_model)
            r.add_post(f"/{version}/models/{{name}}", self.model_method)
        r.add_route("*", "/{tail:.*}", self.unknown_path)

    async def unknown_path(self, request: web.Request) -> web.Response:
        return self.fail("not_found", f"The requested URL {request.path} was not found.")

    async def model_method(self, request: web.Request) -> web.StreamResponse:
        ex = exchange_of(request)
        model, _, method = request.match_info["name"].partition(":")
        version = request.path.split("/")[1]
        if ex.state.models is not None and model not in ex.state.models:
            return self.fail(
                "not_found",
                f"models/{model} is not found for API version "
                f"{version}, or is not supported for {method}. Call ListModels to "
                "see the list of available models and their supported methods.",
            )
        body = ex.body if isinstance(ex.body, dict) else {}
        if method in ("generateContent", "streamGenerateContent"):
            return await self.generate_content(
                request, ex, body, model, method == "streamGenerateContent"
            )
        if method == "embedContent":
            return self.embed_content(ex, body)
        if method == "batchEmbedContents":
            return self.batch_embed_contents(ex, body, model)
        if method == "countTokens":
            turn = content_turn(body.get("generateContentRequest") or body, model)
            return json_response(
                {
                    "totalTokens": turn.prompt_tokens,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": turn.prompt_tokens}],
                }
            )
        return self.fail("not_found", f"The requested URL {request.path} was not found.")

    def validate_contents(self, body: dict[str, Any]) -> web.Response | None:
        contents = body.get("contents")
        if not contents:
            return self.fail(
                "invalid_request", "* GenerateContentRequest.contents: contents is not specified\n"
            )
        for content in contents:
            role = content.get("role", "user") if isinstance(content, dict) else None
            if role not in ("user", "model", "function"):
                return self.fail("invalid_request", "Please use a valid role: user, model.")
        return None

    async def generate_content(
        self, request: web.Request, ex: Exchange, body: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
        problem = self.validate_contents(body)
        if problem is not None:
            return problem
        sse_mode = request.query.get("alt") == "sse"
        state = ex.state
        turn = content_turn(body, model)
        include_thoughts = bool(
            ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get(
                "includeThoughts"
            )
        )
        if state.fast and ex.outcome is NORMAL and not wants_tool(turn):
            key = ("gemini", model, stream, sse_mode, turn.prompt_tokens, turn.max_tokens)
            cached = state.cache.get(key)
            if cached is None:
                cached = self.render(
                    turn, Outcome(text=state.fast_text), state, stream, sse_mode, include_thoughts
                )
                if len(state.cache) > 4096:
                    state.cache.clear()
                state.cache[key] = cached
        else:
            cached = self.render(turn, ex.outcome, state, stream, sse_mode, include_thoughts)
        frames, joined = cached
        if not stream:
            return raw_json_response(joined)
        return await send_stream(
            request,
            frames,
            ex,
            joined=joined,
            content_type="text/event-stream" if sse_mode else "application/json",
        )

    def render(
        self,
        turn: Turn,
        outcome: Outcome,
        state: FakeState,
        stream: bool,
        sse_mode: bool,
        include_thoughts: bool,
    ) -> tuple[list[bytes], bytes]:
        serial = state.next_id()
        gen = generate(turn, outcome, "")
        response_id = f"fake-response-{serial:06d}"
        objects = self.response_objects(
            gen, outcome, turn.model, response_id, stream, include_thoughts
        )
        if not stream:
            return [], orjson.dumps(objects[0])
        if sse_mode:
            frames = [sse(o, newline=CRLF) for o in objects]
        else:
            encoded = [orjson.dumps(o) for o in objects]
            frames = [(b"[" if i == 0 else b",\r\n") + e for i, e in enumerate(encoded)]
            frames.append(b"]")
        return frames, b"".join(frames)

    def response_objects(
        self,
        gen: Generation,
        outcome: Outcome,
        model: str,
        response_id: str,
        stream: bool,
        include_thoughts: bool,
    ) -> list[dict[str, Any]]:
        """The response (one object) or the stream chunks (several objects)."""
        base = {"modelVersion": model, "responseId": response_id}
        usage = not outcome.omit_usage
        if outcome.content_filter == "prompt":
            blocked: dict[str, Any] = {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": safety_ratings(True)}
            }
            if usage:
                blocked["usageMetadata"] = usage_metadata(gen, 0)
            return [{**blocked, **base}]
        if gen.finish == "content_filter":
            filtered = {"finishReason": "SAFETY", "index": 0, "safetyRatings": safety_ratings(True)}
            obj: dict[str, Any] = {"candidates": [filtered]}
            if usage:
                obj["usageMetadata"] = usage_metadata(gen, 0)
            return [{**obj, **base}]
        thought_parts: list[dict[str, Any]] = (
            [{"text": " ".join(["thinking"] * gen.reasoning_tokens), "thought": True}]
            if include_thoughts and gen.reasoning_tokens
            else []
        )
        part_groups: list[list[dict[str, Any]]]
        if gen.tool_call is not None:
            part_groups = [
                [
                    *thought_parts,
                    {"functionCall": {"name": gen.tool_call.name, "args": gen.tool_call.arguments}},
                ]
            ]
            counts = [gen.completion_tokens]
        elif not stream:
            part_groups = [[*thought_parts, {"text": gen.text}]]
            counts = [gen.completion_tokens]
        else:
            pieces = list(gen.pieces) or [""]
            part_groups = [[{"text": piece}] for piece in pieces]
            if thought_parts:
                part_groups.insert(0, thought_parts)
            counts = [min(i + 1, gen.completion_tokens) for i in range(len(pieces))]
            if thought_parts:
                counts.insert(0, 0)
        objects = []
        for i, parts in enumerate(part_groups):
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
            if i == len(part_groups) - 1:
                candidate["finishReason"] = _FINISH[gen.finish]
            candidate["index"] = 0
            obj = {"candidates": [candidate]}
            if usage:
                obj["usageMetadata"] = usage_metadata(gen, counts[i])
            objects.append({**obj, **base})
        return objects

    # --- embeddings --------------------------------------------------------------------------
    def _embed(self, request: dict[str, Any]) -> dict[str, Any]:
        text, _ = _parts_text((request.get("content") or {}).get("parts"))
        dimensions = request.get("outputDimensionality") or EMBEDDING_DIM
        return {"values": embedding_vector(text, int(dimensions))}

    def embed_content(self, ex: Exchange, body: dict[str, Any]) -> web.Response:
        if not isinstance(body.get("content"), dict):
            return self.fail(
                "invalid_request", "* EmbedContentRequest.content: content is not specified\n"
            )
        return json_response({"embedding": self._embed(body)})

    def batch_embed_contents(self, ex: Exchange, body: dict[str, Any], model: str) -> web.Response:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return self.fail(
                "invalid_request",
                "* BatchEmbedContentsRequest.requests: requests is not specified\n",
            )
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or item.get("model") != f"models/{model}":
                return self.fail(
                    "invalid_request",
                    f"Model names should start with 'models/' "
                    f"and match the batch model (request {i}).",
                )
        return json_response({"embeddings": [self._embed(item) for item in requests]})

    # --- models ------------------------------------------------------------------------------
    def _model_object(self, model: str) -> dict[str, Any]:
        embedding = "embedding" in model
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model,
            "description": f"Fake {model}",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["embedContent", "batchEmbedContents"]
            if embedding
            else ["generateContent", "countTokens"],
        }

    async def list_models(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        models = state.models if state.models is not None else DEFAULT_MODELS
        return json_response({"models": [self._model_object(m) for m in models]})

    async def get_model(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        model = request.match_info["name"]
        if state.models is not None and model not in state.models:
            return self.fail("not_found", f"models/{model} is not found.")
        return json_response(self._model_object(model))


def create_app(state: FakeState | None = None, **options: Any) -> web.Application:
    """The fake Gemini application; ``options`` go to ``FakeState``."""
    return build_app(GeminiProvider(), state or FakeState("gemini", **options))
