"""Fake OpenAI API (``/v1/...``), after the OpenAI API reference.

Chat completions (stream chunks, ``stream_options.include_usage`` usage chunk with empty
``choices``, tool calls streamed as ``index``/``id``/``function`` deltas), legacy completions,
embeddings (float and base64), images, audio speech/transcriptions/translations, moderations,
models, and the dashboard billing pair used for balances. Errors use the envelope
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import math
import struct
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
    embedding_base64,
    embedding_vector,
    exchange_of,
    generate,
    json_response,
    now,
    raw_json_response,
    retry_headers,
    send_stream,
    sse,
    text_of,
    tiny_png,
    wants_tool,
)

DEFAULT_MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "dall-e-3",
    "tts-1",
    "whisper-1",
    "omni-moderation-latest",
)

_ERRORS: dict[str, tuple[int, str | None, str | None, str | None, str]] = {
    # kind: (status, type, code, param, default message)
    "invalid_request": (400, "invalid_request_error", None, None, "Invalid request."),
    "authentication": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        None,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    "permission": (
        403,
        "invalid_request_error",
        "unsupported_country_region_territory",
        None,
        "Country, region, or territory not supported",
    ),
    "not_found": (
        404,
        "invalid_request_error",
        "model_not_found",
        "model",
        "The model does not exist or you do not have access to it.",
    ),
    "rate_limit": (
        429,
        "requests",
        "rate_limit_exceeded",
        None,
        "Rate limit reached in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    "insufficient_quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        None,
        "You exceeded your current quota, please check your plan and billing "
        "details. For more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
        "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 130000 tokens. Please reduce the length of the "
        "messages.",
    ),
    "server_error": (
        500,
        "server_error",
        None,
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "unavailable": (
        503,
        "server_error",
        None,
        None,
        "The engine is currently overloaded, please try again later.",
    ),
    "overloaded": (
        503,
        "server_error",
        None,
        None,
        "The engine is currently overloaded, please try again later.",
    ),
}

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
#: A moderation input containing one of these words is flagged in the mapped category.
MODERATION_TRIGGERS = {
    "kill": "violence",
    "hate": "hate",
    "idiot": "harassment",
    "suicide": "self-harm",
    "explicit": "sexual",
    "bomb": "illicit/violent",
}

AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
#: Seconds of audio per word, both for speech output and transcription durations.
SECONDS_PER_WORD = 0.5


def mask_key(key: str) -> str:
    return key[:3] + "*" * 6 + key[-4:] if len(key) > 10 else "*" * 6


def _finish(gen: Generation) -> str:
    return gen.finish


def chat_turn(body: dict[str, Any], model: str) -> Turn:
    """A chat completions request as a provider-neutral turn."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt_tokens = 0
    last_text = ""
    for message in messages:
        text = text_of(message.get("content"))
        prompt_tokens += count_words(text)
        if message.get("role") in ("user", "tool", "function"):
            last_text = text
    tools = [
        ToolDef(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    forced: str | bool = False
    if choice == "required":
        forced = True
    elif isinstance(choice, dict):
        forced = str((choice.get("function") or {}).get("name") or "") or True
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Turn(
        model=model,
        prompt_tokens=prompt_tokens,
        last_text=last_text,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        tools=tools,
        forced_tool=forced,
        tools_disabled=choice == "none",
        last_is_tool_result=bool(messages) and messages[-1].get("role") in ("tool", "function"),
    )


def chat_usage(gen: Generation, n: int = 1) -> dict[str, Any]:
    completion = gen.completion_tokens * n + gen.reasoning_tokens
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": gen.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": gen.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class OpenAIProvider(Provider):
    """The OpenAI wire format; Azure subclasses it."""

    name: ClassVar[str] = "openai"
    prefix: ClassVar[str] = "/v1"

    # --- errors ------------------------------------------------------------------------------
    def error_envelope(
        self,
        kind: ErrorKind,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        status, type_, default_code, default_param, default_message = _ERRORS[kind]
        return status, {
            "error": {
                "message": message or default_message,
                "type": type_,
                "param": param if param is not None else default_param,
                "code": code if code is not None else default_code,
            }
        }

    def error_headers(self, spec: ErrorSpec) -> dict[str, str]:
        headers = {"x-request-id": "req_fake"}
        if spec.kind == "rate_limit":
            headers.update(
                {
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "20s",
                }
            )
        headers.update(retry_headers(spec))
        return headers

    def error_response(self, spec: ErrorSpec, ex: Exchange) -> web.Response:
        status, body = self.error_envelope(spec.kind, spec.message)
        return json_response(body, spec.status or status, self.error_headers(spec))

    def fail(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> web.Response:
        status, body = self.error_envelope(kind, message, param=param, code=code)
        return json_response(body, status, {"x-request-id": "req_fake"})

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        if problem == "missing":
            return json_response(
                {
                    "error": {
                        "message": _MISSING_KEY,
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                401,
            )
        return self.fail(
            "authentication",
            f"Incorrect API key provided: {mask_key(ex.key or '')}."
            " You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def invalid_json(self, ex: Exchange) -> web.Response:
        return self.fail(
            "invalid_request",
            "We could not parse the JSON body of your request. (HINT: This likely "
            "means you aren't using your HTTP library correctly. The OpenAI API "
            "expects a JSON payload, but what was sent was not valid JSON.)",
        )

    def stream_error_frame(self, spec: ErrorSpec) -> bytes:
        return sse(self.error_envelope(spec.kind, spec.message)[1])

    def model_missing(self, ex: Exchange) -> web.Response:
        return self.fail("invalid_request", "you must provide a model parameter")

    def model_not_found(self, model: str) -> web.Response:
        return self.fail(
            "not_found",
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    def prompt_filtered(self, ex: Exchange) -> web.Response:
        return self.fail(
            "invalid_request",
            "Your request was rejected as a result of our safety system.",
            param="messages",
            code="content_policy_violation",
        )

    # --- model resolution (Azure overrides) --------------------------------------------------
    def request_model(self, request: web.Request, body: dict[str, Any]) -> str | None:
        model = body.get("model")
        return model if isinstance(model, str) and model else None

    def response_model(self, model: str, state: FakeState) -> str:
        return model

    def check_model(self, request: web.Request, ex: Exchange) -> str | web.Response:
        """The model to answer as, or the error response for a missing/unknown model."""
        body = ex.body if isinstance(ex.body, dict) else {}
        model = self.request_model(request, body)
        if model is None:
            return self.model_missing(ex)
        if not self.model_allowed(ex.state, model):
            return self.model_not_found(model)
        return self.response_model(model, ex.state)

    # --- hooks for Azure's additions ---------------------------------------------------------
    def decorate_chat_body(self, body: dict[str, Any], gen: Generation) -> None:
        return None

    def preamble_frames(self) -> list[bytes]:
        return []

    def decorate_final_choice(self, choice: dict[str, Any], gen: Generation) -> None:
        return None

    # --- routes ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        p = self.prefix
        r = app.router
        r.add_post(f"{p}/chat/completions", self.chat_completions)
        r.add_post(f"{p}/completions", self.completions)
        r.add_post(f"{p}/embeddings", self.embeddings)
        r.add_post(f"{p}/images/generations", self.images)
        r.add_post(f"{p}/audio/speech", self.speech)
        r.add_post(f"{p}/audio/transcriptions", self.transcriptions)
        r.add_post(f"{p}/audio/translations", self.translations)
        r.add_post(f"{p}/moderations", self.moderations)
        r.add_get(f"{p}/models", self.list_models)
        r.add_get(f"{p}/models/{{model}}", self.retrieve_model)
        for prefix in ("", p):
            r.add_get(f"{prefix}/dashboard/billing/subscription", self.billing_subscription)
            r.add_get(f"{prefix}/dashboard/billing/usage", self.billing_usage)
        r.add_route("*", "/{tail:.*}", self.unknown_path)

    async def unknown_path(self, request: web.Request) -> web.Response:
        message = f"Invalid URL ({request.method} {request.path})"
        return json_response(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            404,
        )

    # --- chat completions --------------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        ex = exchange_of(request)
        body = ex.body
        if not isinstance(body, dict):
            return self.fail("invalid_request", "The request body must be a JSON object.")
        model = self.check_model(request, ex)
        if isinstance(model, web.Response):
            return model
        messages = body.get("messages")
        if messages is None:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list) or not messages:
            return self.fail(
                "invalid_request",
                "Invalid 'messages': empty array. Expected an "
                "array with minimum length 1, but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        stream = bool(body.get("stream"))
        stream_options = body.get("stream_options")
        if stream_options is not None and not stream:
            return self.fail(
                "invalid_request",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        if ex.outcome.content_filter == "prompt":
            return self.prompt_filtered(ex)
        n = body.get("n") or 1
        n = n if isinstance(n, int) and n > 0 else 1
        include_usage = (
            stream
            and isinstance(stream_options, dict)
            and bool(stream_options.get("include_usage"))
        )
        state = ex.state
        turn = chat_turn(body, model)
        fast = state.fast and ex.outcome is NORMAL and not wants_tool(turn)
        if fast:
            cache_key = (
                "chat",
                model,
                stream,
                include_usage,
                n,
                turn.prompt_tokens,
                turn.max_tokens,
            )
            cached = state.cache.get(cache_key)
            if cached is None:
                cached = self._render_chat(
                    turn, Outcome(text=state.fast_text), state, stream, include_usage, n
                )
                if len(state.cache) > 4096:
                    state.cache.clear()
                state.cache[cache_key] = cached
            frames, joined = cached
        else:
            frames, joined = self._render_chat(turn, ex.outcome, state, stream, include_usage, n)
        if stream:
            return await send_stream(request, frames, ex, joined=joined)
        return raw_json_response(joined)

    def _render_chat(
        self,
        turn: Turn,
        outcome: Outcome,
        state: FakeState,
        stream: bool,
        include_usage: bool,
        n: int,
    ) -> tuple[list[bytes], bytes]:
        serial = state.next_id()
        gen = generate(turn, outcome, f"call_fake{serial:06d}")
        completion_id = f"chatcmpl-fake{serial:06d}"
        if stream:
            frames = self.chat_frames(
                gen, turn.model, completion_id, include_usage, n, outcome.omit_usage
            )
            return frames, b"".join(frames)
        body = self.chat_body(gen, turn.model, completion_id, n, outcome.omit_usage)
        return [], orjson.dumps(body)

    def chat_body(
        self, gen: Generation, model: str, completion_id: str, n: int, omit_usage: bool
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": gen.text,
            "refusal": None,
            "annotations": [],
        }
        if gen.tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": gen.tool_call.id,
                    "type": "function",
                    "function": {
                        "name": gen.tool_call.name,
                        "arguments": gen.tool_call.arguments_json,
                    },
                }
            ]
        choices = []
        for index in range(n):
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(gen),
            }
            self.decorate_final_choice(choice, gen)
            choices.append(choice)
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": choices,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if not omit_usage:
            body["usage"] = chat_usage(gen, n)
        self.decorate_chat_body(body, gen)
        return body

    def chat_frames(
        self,
        gen: Generation,
        model: str,
        completion_id: str,
        include_usage: bool,
        n: int,
        omit_usage: bool,
    ) -> list[bytes]:
        base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": now(),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        send_usage = include_usage and not omit_usage
        if send_usage:
            base["usage"] = None

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice: dict[str, Any] = {
                "index": index,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
            }
            if finish is not None:
                self.decorate_final_choice(choice, gen)
            return sse({**base, "choices": [choice]})

        frames = self.preamble_frames()
        for index in range(n):
            call = gen.tool_call
            if call is not None:
                frames.append(
                    chunk(
                        index,
                        {
                            "role": "assistant",
                            "content": None,
                            "refusal": None,
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": call.id,
                                    "type": "function",
                                    "function": {"name": call.name, "arguments": ""},
                                }
                            ],
                        },
                    )
                )
                frames.extend(
                    chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                    for piece in call.pieces
                )
            else:
                frames.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
                frames.extend(chunk(index, {"content": piece}) for piece in gen.pieces)
            frames.append(chunk(index, {}, _finish(gen)))
        if send_usage:
            frames.append(sse({**base, "choices": [], "usage": chat_usage(gen, n)}))
        frames.append(b"data: [DONE]\n\n")
        return frames

    # --- legacy completions ------------------------------------------------------------------
    async def completions(self, request: web.Request) -> web.StreamResponse:
        ex = exchange_of(request)
        body = ex.body
        if not isinstance(body, dict):
            return self.fail("invalid_request", "The request body must be a JSON object.")
        model = self.check_model(request, ex)
        if isinstance(model, web.Response):
            return model
        raw_prompt = body.get("prompt")
        if raw_prompt is None:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        prompts: list[Any] = (
            raw_prompt
            if (isinstance(raw_prompt, list) and raw_prompt and not isinstance(raw_prompt[0], int))
            else [raw_prompt]
        )
        stream = bool(body.get("stream"))
        stream_options = body.get("stream_options")
        include_usage = (
            stream
            and isinstance(stream_options, dict)
            and bool(stream_options.get("include_usage"))
        )
        n = body.get("n") or 1
        n = n if isinstance(n, int) and n > 0 else 1
        max_tokens = body.get("max_tokens", 16)
        serial = ex.state.next_id()
        gens: list[Generation] = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else ""
            tokens = len(prompt) if isinstance(prompt, list) else count_words(text)
            turn = Turn(
                model=model,
                prompt_tokens=tokens,
                last_text=text,
                max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            )
            gens.append(generate(turn, ex.outcome, ""))
        prompt_tokens = sum(g.prompt_tokens for g in gens)
        completion_tokens = sum(g.completion_tokens for g in gens) * n
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": f"cmpl-fake{serial:06d}",
            "object": "text_completion",
            "created": now(),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        indexed = [(i * n + j, g) for i, g in enumerate(gens) for j in range(n)]
        if not stream:
            out: dict[str, Any] = {
                **base,
                "choices": [
                    {"text": g.text, "index": index, "logprobs": None, "finish_reason": g.finish}
                    for index, g in indexed
                ],
            }
            if not ex.outcome.omit_usage:
                out["usage"] = usage
            return json_response(out)
        send_usage = include_usage and not ex.outcome.omit_usage
        head = {**base, "usage": None} if send_usage else base
        frames: list[bytes] = []
        for index, g in indexed:
            frames.extend(
                sse(
                    {
                        **head,
                        "choices": [
                            {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
                        ],
                    }
                )
                for piece in g.pieces
            )
            frames.append(
                sse(
                    {
                        **head,
                        "choices": [
                            {
                                "text": "",
                                "index": index,
                                "logprobs": None,
                                "finish_reason": g.finish,
                            }
                        ],
                    }
                )
            )
        if send_usage:
            frames.append(sse({**base, "choices": [], "usage": usage}))
        frames.append(b"data: [DONE]\n\n")
        return await send_stream(request, frames, ex)

    # --- embeddings --------------------------------------------------------------------------
    async def embeddings(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        body = ex.body if isinstance(ex.body, dict) else {}
        model = self.check_model(request, ex)
        if isinstance(model, web.Response):
            return model
        raw_input = body.get("input")
        if raw_input is None:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        if raw_input == "" or raw_input == []:
            return self.fail(
                "invalid_request",
                "'$.input' is invalid. Please check the API "
                "reference: https://platform.openai.com/docs/api-reference.",
            )
        inputs: list[Any] = (
            raw_input
            if (isinstance(raw_input, list) and not isinstance(raw_input[0], int))
            else [raw_input]
        )
        dimensions = body.get("dimensions") or EMBEDDING_DIM
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return self.fail(
                "invalid_request",
                f"Invalid value for 'encoding_format': '{encoding}'.",
                param="encoding_format",
            )
        data = []
        prompt_tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            prompt_tokens += len(item) if isinstance(item, list) else count_words(item)
            vector = embedding_vector(text, int(dimensions))
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": embedding_base64(vector) if encoding == "base64" else vector,
                }
            )
        if ex.outcome.prompt_tokens is not None:
            prompt_tokens = ex.outcome.prompt_tokens
        out: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if not ex.outcome.omit_usage:
            out["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        return json_response(out)

    # --- images ------------------------------------------------------------------------------
    async def images(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        body = ex.body if isinstance(ex.body, dict) else {}
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if ex.outcome.content_filter is not None:
            return self.fail(
                "invalid_request",
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            )
        model = self.request_model(request, body) or "dall-e-2"
        n = body.get("n") or 1
        gpt_image = model.startswith("gpt-image")
        response_format = "b64_json" if gpt_image else (body.get("response_format") or "url")
        serial = ex.state.next_id()
        data = []
        for i in range(int(n)):
            item: dict[str, Any] = {"revised_prompt": prompt}
            if response_format == "b64_json":
                item["b64_json"] = base64.b64encode(tiny_png()).decode()
            else:
                item["url"] = (
                    f"{request.scheme}://{request.host}/__fake__/images/img-{serial:06d}-{i}.png"
                )
            data.append(item)
        out: dict[str, Any] = {"created": now(), "data": data}
        if gpt_image and not ex.outcome.omit_usage:
            input_tokens = count_words(prompt)
            out["usage"] = {
                "input_tokens": input_tokens,
                "output_tokens": 1000 * int(n),
                "total_tokens": input_tokens + 1000 * int(n),
                "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0},
            }
        return json_response(out)

    # --- audio -------------------------------------------------------------------------------
    async def speech(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        body = ex.body if isinstance(ex.body, dict) else {}
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        if not body.get("voice"):
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'voice'.",
                param="voice",
                code="missing_required_parameter",
            )
        fmt = body.get("response_format") or "mp3"
        if fmt not in AUDIO_TYPES:
            return self.fail("invalid_request", f"Invalid value: '{fmt}'.", param="response_format")
        return web.Response(body=speech_audio(text, fmt), content_type=AUDIO_TYPES[fmt])

    async def transcriptions(self, request: web.Request) -> web.Response:
        return self._audio_text(request, "transcribe")

    async def translations(self, request: web.Request) -> web.Response:
        return self._audio_text(request, "translate")

    def _audio_text(self, request: web.Request, task: str) -> web.Response:
        ex = exchange_of(request)
        form = ex.body if isinstance(ex.body, dict) else {}
        upload = form.get("file")
        if not isinstance(upload, dict):
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'file'.",
                param="file",
                code="missing_required_parameter",
            )
        if not form.get("model") and self.prefix == "/v1":
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        text = ex.outcome.text if ex.outcome.text is not None else transcript_of(upload["content"])
        words = text.split()
        duration = SECONDS_PER_WORD * max(1, len(words))
        fmt = form.get("response_format") or "json"
        usage = {"type": "duration", "seconds": math.ceil(duration)}
        if fmt == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if fmt == "srt":
            return web.Response(
                text=f"1\n00:00:00,000 --> {_clock(duration, ',')}\n{text}\n\n",
                content_type="text/plain",
            )
        if fmt == "vtt":
            return web.Response(
                text=f"WEBVTT\n\n00:00:00.000 --> {_clock(duration, '.')}\n{text}\n\n",
                content_type="text/plain",
            )
        if fmt == "verbose_json":
            granularities = form.get("timestamp_granularities[]") or ["segment"]
            if isinstance(granularities, str):
                granularities = [granularities]
            out: dict[str, Any] = {
                "task": task,
                "language": "english"
                if task == "translate"
                else (form.get("language") or "english"),
                "duration": duration,
                "text": text,
                "segments": [
                    {
                        "id": 0,
                        "seek": 0,
                        "start": 0.0,
                        "end": duration,
                        "text": " " + text,
                        "tokens": list(range(50364, 50364 + len(words))),
                        "temperature": 0.0,
                        "avg_logprob": -0.2,
                        "compression_ratio": 1.0,
                        "no_speech_prob": 0.01,
                    }
                ],
                "usage": usage,
            }
            if "word" in granularities:
                out["words"] = [
                    {"word": w, "start": i * SECONDS_PER_WORD, "end": (i + 1) * SECONDS_PER_WORD}
                    for i, w in enumerate(words)
                ]
            return json_response(out)
        if fmt != "json":
            return self.fail("invalid_request", f"Invalid value: '{fmt}'.", param="response_format")
        return json_response({"text": text, "usage": usage})

    # --- moderations -------------------------------------------------------------------------
    async def moderations(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        body = ex.body if isinstance(ex.body, dict) else {}
        raw_input = body.get("input")
        if raw_input is None:
            return self.fail(
                "invalid_request",
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        inputs = raw_input if isinstance(raw_input, list) else [raw_input]
        results = []
        for item in inputs:
            text = text_of(item).lower()
            hits = {cat for word, cat in MODERATION_TRIGGERS.items() if word in text}
            results.append(
                {
                    "flagged": bool(hits),
                    "categories": {c: c in hits for c in MODERATION_CATEGORIES},
                    "category_scores": {
                        c: 0.9 if c in hits else 0.0001 for c in MODERATION_CATEGORIES
                    },
                    "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
                }
            )
        serial = ex.state.next_id()
        return json_response(
            {
                "id": f"modr-fake{serial:06d}",
                "model": body.get("model") or "omni-moderation-latest",
                "results": results,
            }
        )

    # --- models ------------------------------------------------------------------------------
    def _model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": "system"}

    async def list_models(self, request: web.Request) -> web.Response:
        state = exchange_of(request).state
        models = state.models if state.models is not None else DEFAULT_MODELS
        return json_response({"object": "list", "data": [self._model_object(m) for m in models]})

    async def retrieve_model(self, request: web.Request) -> web.Response:
        ex = exchange_of(request)
        model = request.match_info["model"]
        if not self.model_allowed(ex.state, model):
            return self.model_not_found(model)
        return json_response(self._model_object(model))

    # --- balance -----------------------------------------------------------------------------
    async def billing_subscription(self, request: web.Request) -> web.Response:
        billing = exchange_of(request).state.billing
        return json_response(
            {
                "object": "billing_subscription",
                "has_payment_method": billing.has_payment_method,
                "soft_limit_usd": billing.soft_limit_usd,
                "hard_limit_usd": billing.hard_limit_usd,
                "system_hard_limit_usd": billing.hard_limit_usd,
                "access_until": billing.access_until,
            }
        )

    async def billing_usage(self, request: web.Request) -> web.Response:
        billing = exchange_of(request).state.billing
        for name in ("start_date", "end_date"):
            if not request.query.get(name):
                return self.fail("invalid_request", f"Missing query parameter '{name}'", param=name)
        return json_response(
            {"object": "list", "daily_costs": [], "total_usage": round(billing.used_usd * 100, 6)}
        )


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def transcript_of(audio: bytes) -> str:
    """The fake transcript of an upload: its text when it is UTF-8 text, else a fixed phrase."""
    try:
        text = audio.decode("utf-8")
    except UnicodeDecodeError:
        return f"fake transcript of {len(audio)} bytes"
    if not text.strip() or "\x00" in text:
        return f"fake transcript of {len(audio)} bytes"
    return " ".join(text.split())


def speech_audio(text: str, fmt: str) -> bytes:
    """Deterministic audio bytes: silence of ``SECONDS_PER_WORD`` per word for wav/pcm
    (24 kHz, 16-bit mono), a format-tagged blob carrying the text otherwise."""
    seconds = SECONDS_PER_WORD * max(1, count_words(text))
    if fmt in ("wav", "pcm"):
        pcm = b"\x00\x00" * int(24000 * seconds)
        if fmt == "pcm":
            return pcm
        header = (
            b"RIFF"
            + struct.pack("<I", 36 + len(pcm))
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16)
            + b"data"
            + struct.pack("<I", len(pcm))
        )
        return header + pcm
    magic = {
        "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
        "opus": b"OggS",
        "aac": b"\xff\xf1",
        "flac": b"fLaC",
    }[fmt]
    return magic + b"FAKE-AUDIO:" + text.encode()


def create_app(state: FakeState | None = None, **options: Any) -> web.Application:
    """The fake OpenAI application; ``options`` go to ``FakeState`` when no state is given."""
    return build_app(OpenAIProvider(), state or FakeState("openai", **options))
