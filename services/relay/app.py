"""The relay's HTTP surface: One API's `/v1/*` and `/dashboard/*`, errors in OpenAI's format."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from libs.common.telemetry import REQUEST_ID
from libs.common.tracing import context_of
from libs.providers.base import Mode
from libs.providers.channel_types import ChannelType
from services.relay.errors import RelayError, forbidden
from services.relay.ingress import new_request_id, read_body
from services.relay.service import Caller, Relay

logger = logging.getLogger(__name__)

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
HOP_BY_HOP = frozenset(
    {"host", "authorization", "content-length", "connection", "transfer-encoding", "keep-alive"}
)

Handler = Callable[[Request, Caller], Awaitable[Response]]


def _json(body: object, status: int = 200, request_id: str = "") -> Response:
    headers = {"X-Oneapi-Request-Id": request_id} if request_id else None
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _error(error: RelayError, request_id: str) -> Response:
    return Response(
        error.body(request_id),
        status_code=error.status,
        media_type="application/json",
        headers={"X-Oneapi-Request-Id": request_id},
    )


def create_app(relay: Relay) -> RelayApp:
    """Routes to `relay`; every answer carries `X-Oneapi-Request-Id`."""
    tracer = relay.tracer

    def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = new_request_id()
            # Logged with every line of this request. Each request runs in a task of its own
            # (uvicorn), which ends with the response: the value needs no reset.
            REQUEST_ID.set(request_id)
            caller: Caller | None = None
            try:
                caller = await relay.authenticate(request, request_id)
                response = await handler(request, caller)
            except RelayError as error:
                response = _error(error, request_id)
            except Exception:
                logger.exception("request %s failed", request_id)
                failure = RelayError(500, "internal error", code="internal_error")
                response = _error(failure, request_id)
            relay.metrics.count_request(
                request.scope.get(ROUTE_KEY, "other"),
                caller.model if caller else "",
                str(caller.channel_id or "") if caller else "",
                response.status_code,
            )
            if tracer is not None:
                span = trace.get_current_span()
                span.set_attribute("oneapi.request_id", request_id)
                if caller is not None:
                    span.set_attribute("gen_ai.request.model", caller.model)
                    span.set_attribute("oneapi.channel.id", caller.channel_id)
                    span.set_attribute("oneapi.token.id", caller.token.id)
                    span.set_attribute("oneapi.user.id", caller.user.id)
            return response

        return endpoint

    def relay_json(mode: Mode) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request, caller: Caller) -> Response:
            return await relay.handle_json(request, caller, mode)

        return authenticated(handler)

    def relay_form(mode: Mode) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request, caller: Caller) -> Response:
            return await relay.handle_multipart(request, caller, mode)

        return authenticated(handler)

    async def engine_embeddings(request: Request, caller: Caller) -> Response:
        model = request.path_params["model"]
        return await relay.handle_json(request, caller, Mode.EMBEDDINGS, path_model=model)

    async def list_models(request: Request, caller: Caller) -> Response:
        models = relay.models_for(caller)
        data = [_model_object(model, owner_name(kind)) for model, kind in models]
        return _json({"object": "list", "data": data}, request_id=caller.request_id)

    async def get_model(request: Request, caller: Caller) -> Response:
        wanted = request.path_params["model"]
        for model, kind in relay.models_for(caller):
            if model == wanted:
                return _json(_model_object(model, owner_name(kind)), request_id=caller.request_id)
        raise RelayError(
            404,
            f"The model '{wanted}' does not exist",
            type="invalid_request_error",
            code="model_not_found",
            param="model",
        )

    async def subscription(request: Request, caller: Caller) -> Response:
        return _json(relay.subscription(caller), request_id=caller.request_id)

    async def usage(request: Request, caller: Caller) -> Response:
        return _json(relay.usage(caller), request_id=caller.request_id)

    async def not_implemented(request: Request, caller: Caller) -> Response:
        raise RelayError(
            501, "API not implemented", type="one_api_error", code="api_not_implemented"
        )

    async def proxy(request: Request, caller: Caller) -> Response:
        channel = relay.proxy_channel(int(request.path_params["channel_id"]))
        if channel is None:
            raise forbidden("not a proxy channel", code="channel_not_proxy")
        body = await read_body(request, relay.max_request_bytes)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Authorization"] = f"Bearer {channel.info.key}"
        url = f"{channel.info.base_url}/{request.path_params['path']}"
        if request.url.query:
            url += "?" + request.url.query
        try:
            upstream = await relay.http.request(request.method, url, headers=headers, data=body)
        except aiohttp.ClientError as exc:
            raise RelayError(502, f"upstream unreachable: {type(exc).__name__}") from None

        async def forward() -> object:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        passed = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
        }
        passed["X-Oneapi-Request-Id"] = caller.request_id
        return StreamingResponse(forward(), status_code=upstream.status, headers=passed)  # type: ignore[arg-type]

    async def invalid_url(request: Request) -> Response:
        message = f"Invalid URL ({request.method} {request.url.path})"
        return _json(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": "",
                    "code": "",
                }
            },
            status=404,
        )

    stub = authenticated(not_implemented)
    app = RelayApp(invalid_url, tracer=tracer)
    app.add("POST", "/v1/chat/completions", relay_json(Mode.CHAT))
    app.add("POST", "/v1/completions", relay_json(Mode.COMPLETIONS))
    app.add("POST", "/v1/edits", relay_json(Mode.EDITS))
    app.add("POST", "/v1/embeddings", relay_json(Mode.EMBEDDINGS))
    app.add("POST", "/v1/engines/{model}/embeddings", authenticated(engine_embeddings))
    app.add("POST", "/v1/moderations", relay_json(Mode.MODERATIONS))
    app.add("POST", "/v1/images/generations", relay_json(Mode.IMAGES))
    app.add("POST", "/v1/images/edits", stub)
    app.add("POST", "/v1/images/variations", stub)
    app.add("POST", "/v1/audio/speech", relay_json(Mode.SPEECH))
    app.add("POST", "/v1/audio/transcriptions", relay_form(Mode.TRANSCRIPTION))
    app.add("POST", "/v1/audio/translations", relay_form(Mode.TRANSLATION))
    app.add("GET", "/v1/models", authenticated(list_models))
    app.add("GET", "/v1/models/{model:path}", authenticated(get_model))
    app.add("DELETE", "/v1/models/{model:path}", stub)
    for method in ALL_METHODS:
        app.add(method, "/v1/oneapi/proxy/{channel_id:int}/{path:path}", authenticated(proxy))
    for prefix in ("", "/v1"):
        app.add("GET", prefix + "/dashboard/billing/subscription", authenticated(subscription))
        app.add("GET", prefix + "/dashboard/billing/usage", authenticated(usage))
    for prefix in (
        "/v1/files",
        "/v1/fine_tuning/jobs",
        "/v1/assistants",
        "/v1/threads",
        "/v1/fine-tunes",
    ):
        for method in ALL_METHODS:
            app.add(method, prefix, stub)
            app.add(method, prefix + "/{rest:path}", stub)
    return app


class RelayApp:
    """A small ASGI router: exact paths in a dict, a few patterns, CORS for every origin.

    The relay's hot path is one dict lookup here; Starlette's middleware stack cost a fifth
    of the relay's CPU in `make bench`, so only its Request and Response types are used.
    """

    def __init__(self, fallback: Endpoint, *, tracer: trace.Tracer | None = None) -> None:
        self._exact: dict[tuple[str, str], Endpoint] = {}
        self._patterns: list[tuple[str, str, re.Pattern[str], Endpoint]] = []
        self._fallback = fallback
        self._tracer = tracer

    def add(self, method: str, path: str, endpoint: Endpoint) -> None:
        if "{" not in path:
            self._exact[(method, path)] = endpoint
            return
        self._patterns.append((method, path, _compile(path), endpoint))

    def _route(self, method: str, path: str, scope: Scope) -> Endpoint:
        endpoint = self._exact.get((method, path))
        if endpoint is not None:
            scope[ROUTE_KEY] = path
            return endpoint
        for wanted, template, pattern, candidate in self._patterns:
            if wanted != method:
                continue
            match = pattern.fullmatch(path)
            if match is not None:
                scope[ROUTE_KEY] = template
                scope["path_params"] = {
                    name: int(value) if name == "channel_id" else value
                    for name, value in match.groupdict().items()
                }
                return candidate
        return self._fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        if method == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await _preflight(scope, send)
            return
        endpoint = self._route(method, scope["path"], scope)
        if self._tracer is not None:
            await self._traced(self._tracer, endpoint, scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        response.raw_headers.extend(CORS_HEADERS)
        await response(scope, receive, send)

    @staticmethod
    async def _traced(
        tracer: trace.Tracer, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The request in a server span, which lasts until the body is sent (a stream's end);
        a caller's ``traceparent`` makes it a child of the caller's span."""
        method: str = scope["method"]
        route = scope.get(ROUTE_KEY, "unmatched")
        with tracer.start_as_current_span(
            f"{method} {route}",
            context=context_of(scope["headers"]),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:
            response = await endpoint(Request(scope, receive))
            response.raw_headers.extend(CORS_HEADERS)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(StatusCode.ERROR)
            await response(scope, receive, send)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]

# The matched route's template, for metrics whose label values must stay few.
ROUTE_KEY = "oneapi.route"

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"X-Oneapi-Request-Id"),
]


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.escape(path)
    pattern = re.sub(r"\\\{(\w+):path\\\}", r"(?P<\1>.+)", pattern)
    pattern = re.sub(r"\\\{(\w+):int\\\}", r"(?P<\1>[0-9]+)", pattern)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(pattern)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _preflight(scope: Scope, send: Send) -> None:
    requested = _header(scope, b"access-control-request-headers") or b"*"
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                *CORS_HEADERS,
                (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
                (b"access-control-allow-headers", requested),
                (b"access-control-max-age", b"86400"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _model_object(model: str, owner: str) -> dict[str, object]:
    return {"id": model, "object": "model", "created": 1626777600, "owned_by": owner}


def owner_name(channel_type: int) -> str:
    try:
        return ChannelType(channel_type).name.lower()
    except ValueError:
        return "oneapi"
