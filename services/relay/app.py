"""The relay's HTTP surface: `/v1/*` and `/dashboard/*` in OpenAI's error format."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def invalid_url(request: Request) -> Response:
    """One API's answer to a `/v1` path it does not serve."""
    message = f"Invalid URL ({request.method} {request.url.path})"
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "param": "", "code": ""}},
        status_code=404,
    )


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/{path:path}", invalid_url, methods=ALL_METHODS),
            Route("/dashboard/{path:path}", invalid_url, methods=ALL_METHODS),
        ]
    )
