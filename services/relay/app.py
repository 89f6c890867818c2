"""The relay's HTTP surface: One API's `/v1/*` and `/dashboard/*`, errors in OpenAI's format."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

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


def create_app(relay: Relay) -> Starlette:
    """Routes to `relay`; every answer carries `X-Oneapi-Request-Id`."""

    def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = new_request_id()
            try:
                caller = await relay.authenticate(request, request_id)
                return await handler(request, caller)
            except RelayError as error:
                return _error(error, request_id)
            except Exception:
                logger.exception("request %s failed", request_id)
                return _error(RelayError(500, "internal error", code="internal_error"), request_id)

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
    routes = [
        Route("/v1/chat/completions", relay_json(Mode.CHAT), methods=["POST"]),
        Route("/v1/completions", relay_json(Mode.COMPLETIONS), methods=["POST"]),
        Route("/v1/edits", relay_json(Mode.EDITS), methods=["POST"]),
        Route("/v1/embeddings", relay_json(Mode.EMBEDDINGS), methods=["POST"]),
        Route(
            "/v1/engines/{model:path}/embeddings",
            authenticated(engine_embeddings),
            methods=["POST"],
        ),
        Route("/v1/moderations", relay_json(Mode.MODERATIONS), methods=["POST"]),
        Route("/v1/images/generations", relay_json(Mode.IMAGES), methods=["POST"]),
        Route("/v1/images/edits", stub, methods=["POST"]),
        Route("/v1/images/variations", stub, methods=["POST"]),
        Route("/v1/audio/speech", relay_json(Mode.SPEECH), methods=["POST"]),
        Route("/v1/audio/transcriptions", relay_form(Mode.TRANSCRIPTION), methods=["POST"]),
        Route("/v1/audio/translations", relay_form(Mode.TRANSLATION), methods=["POST"]),
        Route("/v1/models", authenticated(list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", authenticated(get_model), methods=["GET"]),
        Route("/v1/models/{model:path}", stub, methods=["DELETE"]),
        Route(
            "/v1/oneapi/proxy/{channel_id:int}/{path:path}",
            authenticated(proxy),
            methods=ALL_METHODS,
        ),
        Route("/dashboard/billing/subscription", authenticated(subscription), methods=["GET"]),
        Route("/v1/dashboard/billing/subscription", authenticated(subscription), methods=["GET"]),
        Route("/dashboard/billing/usage", authenticated(usage), methods=["GET"]),
        Route("/v1/dashboard/billing/usage", authenticated(usage), methods=["GET"]),
    ]
    for prefix in (
        "/v1/files",
        "/v1/fine_tuning/jobs",
        "/v1/assistants",
        "/v1/threads",
        "/v1/fine-tunes",
    ):
        routes.append(Route(prefix, stub, methods=ALL_METHODS))
        routes.append(Route(prefix + "/{rest:path}", stub, methods=ALL_METHODS))
    routes.append(Route("/v1/{path:path}", invalid_url, methods=ALL_METHODS))
    routes.append(Route("/dashboard/{path:path}", invalid_url, methods=ALL_METHODS))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["X-Oneapi-Request-Id"],
            )
        ],
    )


def _model_object(model: str, owner: str) -> dict[str, object]:
    return {"id": model, "object": "model", "created": 1626777600, "owned_by": owner}


def owner_name(channel_type: int) -> str:
    try:
        return ChannelType(channel_type).name.lower()
    except ValueError:
        return "oneapi"
