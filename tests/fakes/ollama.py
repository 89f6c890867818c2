"""Fake Ollama API, after Ollama's ``docs/api.md``.

``POST /api/chat`` streams NDJSON (``application/x-ndjson``) unless ``"stream": false`` —
streaming is the default — ending with a ``done: true`` object carrying ``done_reason``,
``prompt_eval_count``, ``eval_count`` and nanosecond durations; tool calls come as
``message.tool_calls[].function`` with ``arguments`` as an object. Also ``/api/embed``,
the legacy ``/api/embeddings``, ``/api/tags`` and ``/api/version``. Errors are
``{"error": "..."}``; an unknown path is Go's plain ``404 page not found``. No key is needed
unless keys are configured (then ``Authorization: Bearer``).

Durations are deterministic: ``load_duration`` 1 ms, ``prompt_eval_duration`` 1 ms per
prompt token, ``eval_duration`` 10 ms per output token, ``total_duration`` their sum.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from aiohttp import web

from tests.fakes.core import (
    EMBEDDING_DIM,
    NORMAL,
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
    text_of,
    wants_tool,
)

DEFAULT_MODELS = ("llama3.2:latest", "qwen2.5:7b", "nomic-embed-text:latest")
NDJSON = "application/x-ndjson"

_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid request"),
    "authentication": (401, "unauthorized"),
    "permission": (403, "forbidden"),
    "not_found": (404, "model not found, try pulling it first"),
    "rate_limit": (429, "too many requests"),
    "insufficient_quota": (429, "you have reached your usage limit"),
    "context_length": (400, "input length exceeds the context length"),
    "server_error": (500, "llama runner process has terminated: exit status 2"),
    "unavailable": (503, "server busy, please try again.  maximum pending requests exceeded"),
    "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


def full_name(model: str) -> str:
    """Ollama's model name with the implicit ``:latest`` tag."""
    return model if ":" in model else f"{model}:latest"


def created_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chat_turn(body: dict[str, Any], model: str) -> Turn:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt_tokens = 0
    last_text = ""
    for message in messages:
        text = text_of(message.get("content"))
        prompt_tokens += count_words(text)
        if message.get("role") in ("user", "tool"):
            last_text = text
    tools = [
        ToolDef(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    num_predict = (body.get("options") or {}).get("num_predict")
    return Turn(
        model=model,
        prompt_tokens=prompt_tokens,
        last_text=last_text,
        max_tokens=num_predict if isinstance(num_predict, int) and num_predict >= 0 else None,
        tools=tools,
        last_is_tool_result=bool(messages) and messages[-1].get("role") == "tool",
    )


def final_stats(gen: Generation, omit_usage: bool) -> dict[str, Any]:
    if omit_usage:  # as when the whole prompt was served from Ollama's cache
        return {"total_duration": 1_000_000, "load_duration": 1_000_000}
    output = gen.completion_tokens + gen.reasoning_tokens
    prompt_ns = gen.prompt_tokens * 1_000_000
    eval_ns = output * 10_000_000
    return {
        "total_duration": 1_000_000 + prompt_ns + eval_ns,
        "load_duration": 1_000_000,
        "prompt_eval_count": gen.prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": output,
        "eval_duration": eval_ns,
    }


class OllamaProvider(Provider):
    name: ClassVar[str] = "ollama"
    requires_key: ClassVar[bool] = False
    keepalive_frame: ClassVar[bytes | None] = None

    def model_allowed(self, state: FakeState, model: str) -> bool:
        return state.models is None or full_name(model) in {full_name(m) for m in state.models}

    def error_response(self, spec: ErrorSpec, ex: Exchange | None) -> web.Response:
        status, default = _ERRORS[spec.kind]
        return json_response({"error": spec.message or default}, spec.status or status)

    def fail(self, status: int, message: str) -> web.Response:
        return json_response({"error": message}, status)

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        return self.fail(401, "unauthorized")

    def invalid_json(self, ex: Exchange) -> web.Response:
        return self.fail(400, "invalid character 'x' looking for beginning of value")

    def stream_error_frame(self, spec: ErrorSpec) -> bytes:
        return orjson.dumps({"error": spec.message or _ERRORS[spec.kind][1]}) + b"\n"

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/chat", self.chat)
        r.add_post("/api/embed", self.embed)
        r.add_post("/api/embeddings", self.embeddings)
        r.add_get("/api/tags", self.tags)
        r.add_get("/api/version", self.version)
        r.add_route("*", "/{tail:.*}", self.unknown_path)

    async def unknown_path(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found")

    def describe(self, request: web.Request, body: Any) -> tuple[str | None, bool]:
        if not isinstance(body, dict):
            return None, False
        model = body.get("model")
        return (model if isinstance(model, str) else None), body.get("stream", True) is not False

    def check_model(self, ex: Exchange) -> str | web.Response:
        body = ex.body if isinstance(ex.body, dict) else {}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self.fail(400, "model is required")
        if not self.model_allowed(ex.state, model):
            return self.fail(404, f'model "{model}" not found, try pulling it first')
        return model

    async def chat(self, request: web.Request) -> web.StreamResponse:
        ex = exchange_of(request)
        model = self.check_model(ex)
        if isinstance(model, web.Response):
            return model
        body: dict[str, Any] = ex.body
        stream = body.get("stream", True) is not False
        state = ex.state
        turn = chat_turn(body, model)
        if state.fast and ex.outcome is NORMAL and not wants_tool(turn):
            key = ("ollama", model, stream, turn.prompt_tokens, turn.max_tokens)
            cached = state.cache.get(key)
            if cached is None:
                cached = self.render(turn, Outcome(text=state.fast_text), stream)
                if len(state.cache) > 4096:
                    state.cache.clear()
                state.cache[key] = cached
        else:
            cached = self.render(turn, ex.outcome, stream)
        frames, joined = cached
        if stream:
            return await send_stream(request, frames, ex, content_type=NDJSON, joined=joined)
        return raw_json_response(joined)

    def render(self, turn: Turn, outcome: Outcome, stream: bool) -> tuple[list[bytes], bytes]:
        gen = generate(turn, outcome, "")
        stamp = created_at()
        done_reason = "length" if gen.finish == "length" else "stop"
        tool_calls = (
            [{"function": {"name": gen.tool_call.name, "arguments": gen.tool_call.arguments}}]
            if gen.tool_call is not None
            else None
        )
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": gen.text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return [], orjson.dumps(
                {
                    "model": turn.model,
                    "created_at": stamp,
                    "message": message,
                    "done_reason": done_reason,
                    "done": True,
                    **final_stats(gen, outcome.omit_usage),
                }
            )
        frames: list[bytes] = []

        def line(obj: dict[str, Any]) -> None:
            frames.append(orjson.dumps(obj) + b"\n")

        if tool_calls:
            line(
                {
                    "model": turn.model,
                    "created_at": stamp,
                    "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                    "done": False,
                }
            )
        for piece in gen.pieces:
            line(
                {
                    "model": turn.model,
                    "created_at": stamp,
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
        line(
            {
                "model": turn.model,
                "created_at": stamp,
                "message": {"role": "assistant", "content": ""},
                "done_reason": done_reason,
                "done": True,
                **final_stats(gen, outcome.omit_usage),
            }
        )
        return frames, b"".join(frames)

    async def embed(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        model = self.check_model(ex)
        if isinstance(model, web.Response):
            return model
        raw_input = ex.body.get("input", [])
        inputs = raw_input if isinstance(raw_input, list) else [raw_input]
        dimensions = ex.body.get("dimensions") or EMBEDDING_DIM
        prompt_tokens = sum(count_words(str(text)) for text in inputs)
        out: dict[str, Any] = {
            "model": model,
            "embeddings": [embedding_vector(str(text), int(dimensions)) for text in inputs],
            "total_duration": 1_000_000 + prompt_tokens * 1_000_000,
            "load_duration": 1_000_000,
        }
        if not ex.outcome.omit_usage:
            out["prompt_eval_count"] = prompt_tokens
        return json_response(out)

    async def embeddings(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        model = self.check_model(ex)
        if isinstance(model, web.Response):
            return model
        return json_response({"embedding": embedding_vector(str(ex.body.get("prompt", "")))})

    async def tags(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        models = state.models if state.models is not None else DEFAULT_MODELS
        return json_response(
            {
                "models": [
                    {
                        "name": full_name(m),
                        "model": full_name(m),
                        "modified_at": "2025-01-01T00:00:00.000000000Z",
                        "size": 2019393189,
                        "digest": hashlib.sha256(full_name(m).encode()).hexdigest(),
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": "llama",
                            "families": ["llama"],
                            "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M",
                        },
                    }
                    for m in models
                ]
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        return json_response({"version": "0.12.0"})


def create_app(state: FakeState | None = None, **options: Any) -> web.Application:
    """The fake Ollama application; ``options`` go to ``FakeState`` (no key required)."""
    options.setdefault("require_key", False)
    return build_app(OllamaProvider(), state or FakeState("ollama", **options))
