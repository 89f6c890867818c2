"""Fake Anthropic Messages API (``POST /v1/messages``), after Anthropic's API reference.

``x-api-key`` + ``anthropic-version`` headers, top-level ``system`` (a ``system`` role in
``messages`` is rejected as the real API does), content blocks (text, image, tool_use,
tool_result, thinking), ``stop_reason``, usage with input/output/cache tokens, SSE events
``message_start``/``content_block_start``/``ping``/``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta``)/``content_block_stop``/``message_delta``/
``message_stop``, ``error`` events mid-stream, the envelope
``{"type": "error", "error": {"type", "message"}, "request_id"}`` and 529 ``overloaded_error``.
Also ``/v1/messages/count_tokens`` and ``/v1/models``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import orjson
from aiohttp import web

from tests.fakes.core import (
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
    exchange_of,
    generate,
    json_response,
    raw_json_response,
    retry_headers,
    send_stream,
    split_pieces,
    sse,
    text_of,
    wants_tool,
)

DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-3-5-haiku-20241022", "claude-opus-4-1")

_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_request": (400, "invalid_request_error", "Invalid request."),
    "authentication": (401, "authentication_error", "invalid x-api-key"),
    "permission": (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    "not_found": (404, "not_found_error", "The requested resource could not be found."),
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 "
        "requests per minute. For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits.",
    ),
    "insufficient_quota": (
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please "
        "go to Plans & Billing to upgrade or purchase credits.",
    ),
    "context_length": (
        400,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    ),
    "server_error": (500, "api_error", "Internal server error"),
    "unavailable": (503, "api_error", "Service unavailable"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def messages_turn(body: dict[str, Any], model: str) -> Turn:
    """A Messages request as a provider-neutral turn."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt_tokens = count_words(text_of(body.get("system")))
    last_text = ""
    last_is_tool_result = False
    for message in messages:
        text = text_of(message.get("content"))
        prompt_tokens += count_words(text)
        if message.get("role") == "user":
            last_text = text
            content = message.get("content")
            last_is_tool_result = isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content
            )
    tools = [
        ToolDef(str(t.get("name", "")), t.get("input_schema") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name")
    ]
    choice = body.get("tool_choice") or {}
    forced: str | bool = False
    if isinstance(choice, dict):
        if choice.get("type") == "any":
            forced = True
        elif choice.get("type") == "tool":
            forced = str(choice.get("name") or "") or True
    max_tokens = body.get("max_tokens")
    return Turn(
        model=model,
        prompt_tokens=prompt_tokens,
        last_text=last_text,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        tools=tools,
        forced_tool=forced,
        tools_disabled=isinstance(choice, dict) and choice.get("type") == "none",
        last_is_tool_result=last_is_tool_result,
    )


def _usage(gen: Generation, *, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": gen.prompt_tokens,
        "cache_creation_input_tokens": gen.cache_creation_tokens,
        "cache_read_input_tokens": gen.cached_tokens,
        "output_tokens": (
            gen.completion_tokens + gen.reasoning_tokens if output_tokens is None else output_tokens
        ),
        "service_tier": "standard",
    }


def _thinking_text(gen: Generation) -> str:
    return " ".join(["thinking"] * gen.reasoning_tokens)


class AnthropicProvider(Provider):
    name: ClassVar[str] = "anthropic"
    keepalive_frame: ClassVar[bytes | None] = b'event: ping\ndata: {"type": "ping"}\n\n'

    def extract_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-api-key") or super().extract_key(request)

    # --- errors ------------------------------------------------------------------------------
    def envelope(self, kind: ErrorKind, message: str | None = None) -> tuple[int, dict[str, Any]]:
        status, type_, default = _ERRORS[kind]
        return status, {
            "type": "error",
            "error": {"type": type_, "message": message or default},
            "request_id": "req_fake",
        }

    def fail(self, kind: ErrorKind, message: str, retry_after: float | None = None) -> web.Response:
        return self.error_response(ErrorSpec(kind, message, retry_after=retry_after), None)

    def error_response(self, spec: ErrorSpec, ex: Exchange | None) -> web.Response:
        status, body = self.envelope(spec.kind, spec.message)
        headers = {"request-id": "req_fake", **retry_headers(spec)}
        if spec.kind == "rate_limit":
            headers["anthropic-ratelimit-requests-remaining"] = "0"
        headers.pop("retry-after-ms", None)
        return json_response(body, spec.status or status, headers)

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        return self.fail(
            "authentication",
            "x-api-key header is required" if problem == "missing" else "invalid x-api-key",
        )

    def invalid_json(self, ex: Exchange) -> web.Response:
        return self.fail(
            "invalid_request",
            "There was an error parsing the body of your request. Please ensure it is valid JSON.",
        )

    def stream_error_frame(self, spec: ErrorSpec) -> bytes:
        _, body = self.envelope(spec.kind, spec.message)
        del body["request_id"]
        return sse(body, "error")

    # --- routes ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/messages", self.messages)
        r.add_post("/v1/messages/count_tokens", self.count_tokens)
        r.add_get("/v1/models", self.list_models)
        r.add_get("/v1/models/{model}", self.retrieve_model)
        r.add_route("*", "/{tail:.*}", self.unknown_path)

    async def unknown_path(self, request: web.Request) -> web.Response:
        return self.fail("not_found", "Not Found")

    def validate(
        self, request: web.Request, body: Any, *, need_max_tokens: bool
    ) -> web.Response | None:
        if not request.headers.get("anthropic-version"):
            return self.fail("invalid_request", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return self.fail("invalid_request", "The request body must be a JSON object.")
        for field in ("model", "messages", *(("max_tokens",) if need_max_tokens else ())):
            if field not in body:
                return self.fail("invalid_request", f"{field}: Field required")
        for i, message in enumerate(body["messages"] or []):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system":
                return self.fail(
                    "invalid_request",
                    'messages: Unexpected role "system". The '
                    "Messages API accepts a top-level `system` parameter, not "
                    '"system" as an input message role.',
                )
            if role not in ("user", "assistant"):
                return self.fail(
                    "invalid_request", f"messages.{i}.role: Input should be 'user' or 'assistant'"
                )
        return None

    async def messages(self, request: web.Request) -> web.StreamResponse:
        ex = exchange_of(request)
        body = ex.body
        problem = self.validate(request, body, need_max_tokens=True)
        if problem is not None:
            return problem
        model = str(body["model"])
        if ex.state.models is not None and model not in ex.state.models:
            return self.fail("not_found", f"model: {model}")
        if ex.outcome.content_filter == "prompt":
            return self.fail("invalid_request", "Output blocked by content filtering policy")
        stream = bool(body.get("stream"))
        state = ex.state
        turn = messages_turn(body, model)
        if state.fast and ex.outcome is NORMAL and not wants_tool(turn):
            key = ("messages", model, stream, turn.prompt_tokens, turn.max_tokens)
            cached = state.cache.get(key)
            if cached is None:
                cached = self.render(turn, Outcome(text=state.fast_text), state, stream)
                if len(state.cache) > 4096:
                    state.cache.clear()
                state.cache[key] = cached
        else:
            cached = self.render(turn, ex.outcome, state, stream)
        frames, joined = cached
        headers = {"request-id": f"req_fake{state.request_count:06d}"}
        if stream:
            return await send_stream(request, frames, ex, headers=headers, joined=joined)
        return raw_json_response(joined, headers=headers)

    def render(
        self, turn: Turn, outcome: Outcome, state: FakeState, stream: bool
    ) -> tuple[list[bytes], bytes]:
        serial = state.next_id()
        gen = generate(turn, outcome, f"toolu_fake{serial:06d}")
        message_id = f"msg_fake{serial:06d}"
        if stream:
            frames = self.frames(gen, turn.model, message_id, outcome.omit_usage)
            return frames, b"".join(frames)
        return [], orjson.dumps(self.message(gen, turn.model, message_id))

    def content_blocks(self, gen: Generation) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if gen.reasoning_tokens:
            blocks.append(
                {"type": "thinking", "thinking": _thinking_text(gen), "signature": "fake-signature"}
            )
        if gen.tool_call is not None:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": gen.tool_call.id,
                    "name": gen.tool_call.name,
                    "input": gen.tool_call.arguments,
                }
            )
        elif gen.finish != "content_filter":
            blocks.append({"type": "text", "text": gen.text})
        return blocks

    def message(self, gen: Generation, model: str, message_id: str) -> dict[str, Any]:
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self.content_blocks(gen),
            "stop_reason": _STOP[gen.finish],
            "stop_sequence": None,
            "usage": _usage(gen),
        }

    def frames(self, gen: Generation, model: str, message_id: str, omit_usage: bool) -> list[bytes]:
        frames = [
            sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": _usage(gen, output_tokens=1),
                    },
                },
                "message_start",
            )
        ]
        index = 0
        pinged = False

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index, pinged
            frames.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": start},
                    "content_block_start",
                )
            )
            if not pinged:
                frames.append(sse({"type": "ping"}, "ping"))
                pinged = True
            frames.extend(
                sse(
                    {"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta",
                )
                for d in deltas
            )
            frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
            index += 1

        if gen.reasoning_tokens:
            block(
                {"type": "thinking", "thinking": "", "signature": ""},
                [
                    {"type": "thinking_delta", "thinking": piece}
                    for piece in split_pieces(_thinking_text(gen))
                ]
                + [{"type": "signature_delta", "signature": "fake-signature"}],
            )
        call = gen.tool_call
        if call is not None:
            block(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                [{"type": "input_json_delta", "partial_json": ""}]
                + [{"type": "input_json_delta", "partial_json": p} for p in call.pieces],
            )
        elif gen.finish != "content_filter":
            block(
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": piece} for piece in gen.pieces],
            )
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP[gen.finish], "stop_sequence": None},
        }
        if not omit_usage:
            delta["usage"] = _usage(gen)
            del delta["usage"]["service_tier"]
        frames.append(sse(delta, "message_delta"))
        frames.append(sse({"type": "message_stop"}, "message_stop"))
        return frames

    async def count_tokens(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        problem = self.validate(request, ex.body, need_max_tokens=False)
        if problem is not None:
            return problem
        turn = messages_turn(ex.body, str(ex.body["model"]))
        return json_response({"input_tokens": turn.prompt_tokens})

    def _model_object(self, model: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2025-01-01T00:00:00Z",
        }

    async def list_models(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        models = state.models if state.models is not None else DEFAULT_MODELS
        return json_response(
            {
                "data": [self._model_object(m) for m in models],
                "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None,
            }
        )

    async def retrieve_model(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        model = request.match_info["model"]
        if state.models is not None and model not in state.models:
            return self.fail("not_found", f"model: {model}")
        return json_response(self._model_object(model))


def create_app(state: FakeState | None = None, **options: Any) -> web.Application:
    """The fake Anthropic application; ``options`` go to ``FakeState``."""
    return build_app(AnthropicProvider(), state or FakeState("anthropic", **options))
