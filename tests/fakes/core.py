"""Shared machinery of the fake upstream providers.

Scripted outcomes and the rules that select them, request recording, the deterministic
reply and token rule, the stream writer and the aiohttp application skeleton that every
provider module fills with its own routes and wire formats.

The token rule (the same for every provider; details in ``tests/fakes/README.md``):
a token is a whitespace-separated word. Prompt tokens are the words of every text in the
request (system prompt, message texts, tool results); completion tokens are the pieces
streamed: one per word of the reply, or for a tool call one for the function name plus one
per word of the JSON arguments (serialised with ``", "`` and ``": "`` separators).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.parser
import email.policy
import hashlib
import itertools
import json
import struct
import threading
import time
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal, get_args

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "rate_limit",
    "insufficient_quota",
    "context_length",
    "server_error",
    "unavailable",
    "overloaded",
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)

Finish = Literal["stop", "length", "tool_calls", "content_filter"]

#: A user message containing this phrase (any case) makes the fake answer with a tool call
#: when the request offers tools.
TOOL_TRIGGER = "call tool"

#: Dimension of fake embedding vectors unless the request asks for another one.
EMBEDDING_DIM = 16


class FakeError(Exception):
    """Base of the errors raised by the fakes themselves (not the errors they serve)."""


class FakeStartError(FakeError):
    """A fake server could not be started."""


# --- scripted outcomes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """An error the fake answers with, rendered in the provider's own format.

    ``status`` overrides the provider's usual HTTP status for ``kind`` (e.g. 200 to send an
    error body with a success status); ``retry_after`` adds the provider's retry headers.
    """

    kind: ErrorKind
    message: str | None = None
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """Forces a tool call; unset fields come from the request's tools."""

    name: str | None = None
    arguments: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the fake answers one request. Combine outcomes with ``|``.

    - ``text``: reply text instead of the echo of the last user message.
    - ``tool_call``: answer with a tool call even without a trigger.
    - ``error``: answer with this error before any response header.
    - ``error_after``: streams only: send ``error`` (default ``server_error``) as an in-stream
      error frame after this many frames, then end the stream. Non-stream requests get the
      error as a plain error response.
    - ``delay``: seconds to wait before the response headers.
    - ``chunk_delay``: seconds to wait between stream frames.
    - ``keepalive``: number of keep-alive frames (SSE comments, Anthropic ``ping``) sent before
      the first data frame.
    - ``drop_after``: close the connection after this many stream frames; a non-stream
      request is cut before any response byte.
    - ``omit_usage``: leave usage out (no usage chunk, no ``usage``/``usageMetadata``).
    - ``content_filter``: ``"prompt"`` blocks the request, ``"output"`` filters the reply, in
      the provider's way (Azure filter results, Gemini safety blocks, finish reasons).
    - ``prompt_tokens``/``completion_tokens``: override the computed counts.
    - ``cached_tokens``/``cache_creation_tokens``/``reasoning_tokens``: extra usage fields.
    """

    text: str | None = None
    tool_call: ToolCallSpec | None = None
    error: ErrorSpec | None = None
    error_after: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    keepalive: int = 0
    drop_after: int | None = None
    omit_usage: bool = False
    content_filter: Literal["prompt", "output"] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    def __or__(self, other: Outcome) -> Outcome:
        changes = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) != f.default
        }
        return dataclasses.replace(self, **changes)

    @property
    def shapes_stream(self) -> bool:
        """Whether the stream writer must send frame by frame (not one pre-joined write)."""
        return bool(
            self.chunk_delay
            or self.keepalive
            or self.drop_after is not None
            or self.error_after is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the control API of a fake running in another process."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if v != Outcome.__dataclass_fields__[k].default}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """Inverse of ``to_dict``."""
        values = dict(data)
        if values.get("error") is not None:
            values["error"] = ErrorSpec(**values["error"])
        if values.get("tool_call") is not None:
            values["tool_call"] = ToolCallSpec(**values["tool_call"])
        return cls(**values)


NORMAL = Outcome()


def reply(text: str, **usage: int) -> Outcome:
    """Answer with ``text``; keyword arguments override usage fields (see ``Outcome``)."""
    return Outcome(text=text, **usage)  # type: ignore[arg-type]


def error(
    kind: ErrorKind,
    message: str | None = None,
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> Outcome:
    """Answer with an error of ``kind`` in the provider's format."""
    return Outcome(error=ErrorSpec(kind, message, status, retry_after))


def mid_stream_error(
    after: int, kind: ErrorKind = "server_error", message: str | None = None
) -> Outcome:
    """Stream ``after`` frames, then an in-stream error frame."""
    return Outcome(error=ErrorSpec(kind, message), error_after=after)


def tool_call(name: str | None = None, arguments: Mapping[str, Any] | None = None) -> Outcome:
    """Answer with a tool call."""
    return Outcome(tool_call=ToolCallSpec(name, arguments))


def slow(delay: float = 0.0, chunk_delay: float = 0.0) -> Outcome:
    """Wait ``delay`` seconds before the headers and ``chunk_delay`` between stream frames."""
    return Outcome(delay=delay, chunk_delay=chunk_delay)


def dropped(after: int = 0) -> Outcome:
    """Close the connection after ``after`` stream frames (non-stream: before the response)."""
    return Outcome(drop_after=after)


def no_usage() -> Outcome:
    """Leave usage out of the answer."""
    return Outcome(omit_usage=True)


def keepalive(count: int) -> Outcome:
    """Send ``count`` keep-alive frames before the first data frame."""
    return Outcome(keepalive=count)


def content_filtered(stage: Literal["prompt", "output"] = "output") -> Outcome:
    """Block the prompt or filter the output, the provider's way."""
    return Outcome(content_filter=stage)


@dataclass(slots=True)
class Rule:
    """Applies ``outcome`` to requests that match every set field, ``times`` times (or always)."""

    outcome: Outcome
    model: str | None = None
    key: str | None = None
    path: str | None = None
    stream: bool | None = None
    times: int | None = None

    def matches(self, model: str | None, key: str | None, path: str, stream: bool) -> bool:
        return (
            (self.model is None or self.model == model)
            and (self.key is None or self.key == key)
            and (self.path is None or self.path in path)
            and (self.stream is None or self.stream == stream)
        )


# --- recording ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it. Header names are lower case.

    ``body`` is the parsed JSON, or for multipart forms a dict of fields where files are
    ``{"filename", "content_type", "content"}`` dicts, ``INVALID_BODY`` for a body that is
    not JSON, or ``None`` when empty.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes
    key: str | None

    @property
    def json(self) -> dict[str, Any]:
        """The body as a JSON object (fails loudly when it is not one)."""
        if not isinstance(self.body, dict):
            raise TypeError(f"request body is {type(self.body).__name__}, not a JSON object")
        return self.body

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (file contents as base64, an unparsable body as ``None``)."""
        body = self.body
        if isinstance(body, InvalidBody):
            body = None
        elif isinstance(body, dict):
            body = {
                k: (
                    {**v, "content": base64.b64encode(v["content"]).decode()}
                    if isinstance(v, dict) and isinstance(v.get("content"), bytes)
                    else v
                )
                for k, v in body.items()
            }
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": body,
            "raw": ""
            if self.headers.get("content-type", "").startswith("multipart/")
            else self.raw.decode("utf-8", "replace"),
            "key": self.key,
        }


@dataclass(slots=True)
class Billing:
    """Numbers served by the OpenAI-style balance endpoints."""

    hard_limit_usd: float = 100.0
    soft_limit_usd: float = 80.0
    used_usd: float = 12.5
    has_payment_method: bool = True
    access_until: int = 0


class FakeState:
    """Everything a test controls or observes on one fake server. Thread-safe.

    ``keys``: the accepted API keys; ``None`` accepts any non-empty key. ``require_key``:
    whether a request without a key is rejected (Ollama defaults to no). ``models``: when set,
    other models are answered with the provider's "model not found" error. ``deployments``
    (Azure): deployment name -> model name; when set, other deployments are not found.
    ``fast``: benchmark mode (no recording, replies of ``fast_text``, pre-encoded bodies).
    """

    def __init__(
        self,
        provider: str,
        *,
        keys: Iterable[str] | None = None,
        require_key: bool = True,
        models: Iterable[str] | None = None,
        deployments: Mapping[str, str] | None = None,
        billing: Billing | None = None,
        fast: bool = False,
        fast_text: str = "The quick brown fox jumps over the lazy dog again and again today",
        record: bool | None = None,
    ) -> None:
        self.provider = provider
        self.keys: frozenset[str] | None = None if keys is None else frozenset(keys)
        self.require_key = require_key
        self.models: tuple[str, ...] | None = None if models is None else tuple(models)
        self.deployments: dict[str, str] | None = None if deployments is None else dict(deployments)
        self.billing = billing or Billing()
        self.fast = fast
        self.fast_text = fast_text
        self.record = (not fast) if record is None else record
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self.streams_cut_by_client = 0
        self.cache: dict[Any, Any] = {}
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # rules
    def add_rule(
        self,
        outcome: Outcome,
        *,
        model: str | None = None,
        key: str | None = None,
        path: str | None = None,
        stream: bool | None = None,
        times: int | None = None,
    ) -> Rule:
        """Add a rule; the first matching rule (in the order added) decides a request."""
        rule = Rule(outcome, model, key, path, stream, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def push(self, *outcomes: Outcome, **match: Any) -> None:
        """Queue one-shot outcomes: each is used by exactly one matching request, in order."""
        for outcome in outcomes:
            self.add_rule(outcome, times=1, **match)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def pick(self, model: str | None, key: str | None, path: str, stream: bool) -> Outcome:
        """The outcome for a request: the first matching rule's, consuming one use."""
        if not self._rules:
            return NORMAL
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(model, key, path, stream):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            del self._rules[i]
                    return rule.outcome
        return NORMAL

    # keys
    def key_problem(self, key: str | None) -> Literal["missing", "invalid"] | None:
        if not key:
            return "missing" if self.require_key or self.keys is not None else None
        if self.keys is not None and key not in self.keys:
            return "invalid"
        return None

    def set_keys(self, keys: Iterable[str] | None) -> None:
        self.keys = None if keys is None else frozenset(keys)

    # misc
    def next_id(self) -> int:
        return next(self._ids)

    def reset(self) -> None:
        """Forget recorded requests and rules."""
        self.clear_rules()
        self.requests.clear()
        self.request_count = 0


# --- the deterministic reply ----------------------------------------------------------------


def count_words(text: str) -> int:
    """Tokens of ``text`` under the fakes' rule: whitespace-separated words."""
    return len(text.split())


@dataclass(frozen=True, slots=True)
class ToolDef:
    name: str
    parameters: Mapping[str, Any]


@dataclass(slots=True)
class Turn:
    """A provider-neutral view of a generation request."""

    model: str
    prompt_tokens: int
    last_text: str
    max_tokens: int | None = None
    tools: list[ToolDef] = field(default_factory=list)
    forced_tool: str | bool = False
    tools_disabled: bool = False
    last_is_tool_result: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: Mapping[str, Any]
    arguments_json: str
    pieces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Generation:
    """The fake's answer, before it is rendered in a wire format."""

    text: str
    pieces: tuple[str, ...]
    tool_call: ToolCallOut | None
    finish: Finish
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens


def split_pieces(text: str) -> tuple[str, ...]:
    """Stream pieces of ``text``: its words, each after the first with one leading space."""
    return tuple(w if i == 0 else " " + w for i, w in enumerate(text.split()))


def default_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic arguments for a JSON schema: every property gets a plain value."""
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = str(prop.get("type", "string")).lower()
        if prop.get("enum"):
            out[name] = prop["enum"][0]
        elif kind in ("integer", "number"):
            out[name] = 1
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = "fake"
    return out


def wants_tool(turn: Turn) -> bool:
    if not turn.tools or turn.tools_disabled:
        return False
    if turn.forced_tool:
        return True
    return not turn.last_is_tool_result and TOOL_TRIGGER in turn.last_text.lower()


def generate(turn: Turn, outcome: Outcome, call_id: str) -> Generation:
    """The answer to ``turn``: an echo of the last user text, a tool call, or what is scripted."""
    prompt_tokens = turn.prompt_tokens if outcome.prompt_tokens is None else outcome.prompt_tokens
    usage_extra = {
        "cached_tokens": outcome.cached_tokens,
        "cache_creation_tokens": outcome.cache_creation_tokens,
        "reasoning_tokens": outcome.reasoning_tokens,
    }
    if outcome.content_filter == "output":
        return Generation(
            "",
            (),
            None,
            "content_filter",
            prompt_tokens,
            outcome.completion_tokens or 0,
            **usage_extra,
        )
    if outcome.tool_call is not None or wants_tool(turn):
        spec = outcome.tool_call or ToolCallSpec()
        by_name = {t.name: t for t in turn.tools}
        name = spec.name or (turn.forced_tool if isinstance(turn.forced_tool, str) else None)
        tool = by_name.get(name) if name else (turn.tools[0] if turn.tools else None)
        name = name or (tool.name if tool else "fake_tool")
        arguments = (
            dict(spec.arguments)
            if spec.arguments is not None
            else (default_arguments(tool.parameters) if tool else {})
        )
        arguments_json = json.dumps(arguments, ensure_ascii=False)
        pieces = split_pieces(arguments_json)
        call = ToolCallOut(call_id, name, arguments, arguments_json, pieces)
        completion = (
            1 + len(pieces) if outcome.completion_tokens is None else (outcome.completion_tokens)
        )
        return Generation("", (), call, "tool_calls", prompt_tokens, completion, **usage_extra)
    if outcome.text is not None:
        source = outcome.text
    else:
        source = turn.last_text if turn.last_text.strip() else f"Hello from {turn.model}"
    words = source.split()
    finish: Finish = "stop"
    if turn.max_tokens is not None and len(words) > turn.max_tokens:
        words = words[: max(turn.max_tokens, 0)]
        finish = "length"
    text = " ".join(words)
    pieces = split_pieces(text)
    completion = len(pieces) if outcome.completion_tokens is None else outcome.completion_tokens
    return Generation(text, pieces, None, finish, prompt_tokens, completion, **usage_extra)


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector for ``text``; values are exact float32 numbers."""
    raw = bytearray()
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dimensions}I", bytes(raw[: dimensions * 4]))
    values = [(i / 0xFFFFFFFF) * 2.0 - 1.0 for i in ints]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return list(array("f", (v / norm for v in values)))


def embedding_base64(values: Sequence[float]) -> str:
    """``values`` as base64 of little-endian float32, as OpenAI's ``encoding_format=base64``."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@lru_cache(maxsize=1)
def tiny_png() -> bytes:
    """A valid 1x1 PNG image."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x20\x80\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --- HTTP plumbing --------------------------------------------------------------------------


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def raw_json_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def retry_headers(spec: ErrorSpec) -> dict[str, str]:
    if spec.retry_after is None:
        return {}
    return {
        "retry-after": str(max(0, round(spec.retry_after))),
        "retry-after-ms": str(int(spec.retry_after * 1000)),
    }


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as a dict; files become dicts with their bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            value: Any = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "content": content,
            }
        else:
            value = content.decode("utf-8", "replace")
        if name in form:  # repeated fields (e.g. timestamp_granularities[]) become lists
            previous = form[name]
            form[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            form[name] = value
    return form


class InvalidBody:
    """Marker for a body that was sent as JSON but does not parse."""

    __slots__ = ()


INVALID_BODY = InvalidBody()


@dataclass(slots=True)
class Exchange:
    """Per-request context the middleware hands to the provider handlers."""

    state: FakeState
    body: Any
    key: str | None
    model: str | None
    stream: bool
    outcome: Outcome = NORMAL


EXCHANGE_KEY = web.RequestKey("fake_exchange", Exchange)
STATE_KEY = web.AppKey("fake_state", FakeState)


def exchange_of(request: web.Request) -> Exchange:
    ex: Exchange = request[EXCHANGE_KEY]
    return ex


class Provider:
    """A provider's wire format: credentials, errors and routes. Subclassed per provider."""

    name: ClassVar[str] = ""
    requires_key: ClassVar[bool] = True
    #: Frame sent for ``Outcome.keepalive``; None when the format has no keep-alive frame.
    keepalive_frame: ClassVar[bytes | None] = b": keep-alive\n\n"

    def extract_key(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def describe(self, request: web.Request, body: Any) -> tuple[str | None, bool]:
        """The model and whether a stream is asked for, for rule matching."""
        if isinstance(body, dict):
            model = body.get("model")
            return (model if isinstance(model, str) else None), bool(body.get("stream"))
        return None, False

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        raise NotImplementedError

    def error_response(self, spec: ErrorSpec, ex: Exchange) -> web.Response:
        raise NotImplementedError

    def invalid_json(self, ex: Exchange) -> web.Response:
        return self.error_response(
            ErrorSpec("invalid_request", "The request body is not valid JSON."), ex
        )

    def stream_error_frame(self, spec: ErrorSpec) -> bytes:
        raise NotImplementedError

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def model_allowed(self, state: FakeState, model: str) -> bool:
        return state.models is None or model in state.models


PROVIDER_KEY = web.AppKey("fake_provider", Provider)
CONTROL_PREFIX = "/__fake__/"


@web.middleware
async def fake_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record, check the key, pick the scripted outcome, apply delays and errors."""
    if request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    state = request.app[STATE_KEY]
    provider = request.app[PROVIDER_KEY]
    raw = await request.read()
    content_type = request.headers.get("Content-Type", "")
    body: Any = None
    if content_type.startswith("multipart/form-data"):
        body = parse_multipart(content_type, raw)
    elif raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = INVALID_BODY
    key = provider.extract_key(request)
    state.request_count += 1
    if state.record:
        state.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                raw,
                key,
            )
        )
    model, stream = provider.describe(request, body)
    ex = Exchange(state, body, key, model, stream)
    problem = state.key_problem(key) if (provider.requires_key or state.keys) else None
    if problem is not None:
        return provider.auth_error(problem, ex)
    if body is INVALID_BODY:
        return provider.invalid_json(ex)
    ex.outcome = outcome = state.pick(model, key, request.path, stream)
    if outcome.delay:
        await asyncio.sleep(outcome.delay)
    if outcome.error is not None and (outcome.error_after is None or not stream):
        return provider.error_response(outcome.error, ex)
    if outcome.drop_after is not None and not stream:
        # a non-stream request is cut before any byte of the response
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)
    request[EXCHANGE_KEY] = ex
    return await handler(request)


async def send_stream(
    request: web.Request,
    frames: Sequence[bytes],
    ex: Exchange,
    *,
    content_type: str = "text/event-stream",
    headers: Mapping[str, str] | None = None,
    joined: bytes | None = None,
) -> web.StreamResponse:
    """Send ``frames`` as a chunked stream, shaped by the exchange's outcome.

    ``joined`` is the pre-encoded concatenation of ``frames`` (fast mode): sent in one write
    when the outcome does not ask for per-frame behaviour.
    """
    provider = request.app[PROVIDER_KEY]
    outcome = ex.outcome
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = content_type
    if content_type == "text/event-stream":
        resp.headers["Cache-Control"] = "no-cache"
    await resp.prepare(request)
    if not outcome.shapes_stream:
        await resp.write(joined if joined is not None else b"".join(frames))
        await resp.write_eof()
        return resp
    if provider.keepalive_frame is not None:
        for _ in range(outcome.keepalive):
            await resp.write(provider.keepalive_frame)
            if outcome.chunk_delay:
                await asyncio.sleep(outcome.chunk_delay)
    try:
        for i, frame in enumerate(frames):
            if outcome.drop_after is not None and i >= outcome.drop_after:
                transport = request.transport
                if transport is not None:
                    transport.close()  # flushes what was written, then closes: a cut stream
                return resp
            if outcome.error_after is not None and i >= outcome.error_after:
                await resp.write(
                    provider.stream_error_frame(outcome.error or ErrorSpec("server_error"))
                )
                break
            if i and outcome.chunk_delay:
                await asyncio.sleep(outcome.chunk_delay)
            await resp.write(frame)
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        # The client (the relay) closed the connection mid-stream.
        ex.state.streams_cut_by_client += 1
        raise
    return resp


def sse(data: Any, event: str | None = None, *, newline: bytes = b"\n") -> bytes:
    """One SSE frame with JSON data."""
    head = b"event: " + event.encode() + newline if event else b""
    return head + b"data: " + orjson.dumps(data) + newline + newline


def now() -> int:
    return int(time.time())


# --- control API (for a fake in another process) --------------------------------------------


async def _control_health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return json_response({"provider": state.provider, "requests": state.request_count})


async def _control_add_rule(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    data = await request.json()
    match = {k: data.get(k) for k in ("model", "key", "path", "stream", "times")}
    state.add_rule(Outcome.from_dict(data.get("outcome") or {}), **match)
    return json_response({"rules": len(state.rules)})


async def _control_clear_rules(request: web.Request) -> web.Response:
    request.app[STATE_KEY].clear_rules()
    return json_response({"rules": 0})


async def _control_requests(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return json_response([r.to_dict() for r in state.requests])


async def _control_reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return json_response({"ok": True})


async def _control_keys(request: web.Request) -> web.Response:
    data = await request.json()
    request.app[STATE_KEY].set_keys(data.get("keys"))
    return json_response({"ok": True})


async def _control_image(request: web.Request) -> web.Response:
    return web.Response(body=tiny_png(), content_type="image/png")


def build_app(provider: Provider, state: FakeState) -> web.Application:
    """An application with the control routes, then the provider's routes."""
    app = web.Application(middlewares=[fake_middleware], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app[PROVIDER_KEY] = provider
    app.router.add_get(CONTROL_PREFIX + "health", _control_health)
    app.router.add_post(CONTROL_PREFIX + "rules", _control_add_rule)
    app.router.add_delete(CONTROL_PREFIX + "rules", _control_clear_rules)
    app.router.add_get(CONTROL_PREFIX + "requests", _control_requests)
    app.router.add_delete(CONTROL_PREFIX + "requests", _control_reset)
    app.router.add_put(CONTROL_PREFIX + "keys", _control_keys)
    app.router.add_get(CONTROL_PREFIX + "images/{name}", _control_image)
    provider.add_routes(app)
    return app


def text_of(content: Any) -> str:
    """Texts inside a message content (string, list of parts, or nested tool results)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (text_of(part) for part in content) if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        if "content" in content:  # Anthropic tool_result blocks
            return text_of(content["content"])
    return ""
