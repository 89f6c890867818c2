"""The admin's FastAPI application: One API's `/api`, route for route."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.admin.accounts.endpoints import router as accounts_router
from services.admin.channels.endpoints import router as channels_router
from services.admin.deps import global_api_rate_limit
from services.admin.errors import AdminError
from services.admin.logs.endpoints import router as logs_router
from services.admin.misc.endpoints import router as misc_router
from services.admin.options.endpoints import router as options_router
from services.admin.redemptions.endpoints import router as redemptions_router
from services.admin.state import AdminState
from services.admin.tokens.endpoints import router as tokens_router
from services.admin.users.endpoints import router as users_router

logger = logging.getLogger(__name__)

INVALID_PARAMETERS = "无效的参数"


def _envelope(message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"success": False, "message": message}, status_code=status_code)


async def _admin_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AdminError)
    return _envelope(exc.message, exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # One API answers bad input with HTTP 200 and success=false; we also say what was wrong.
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg")))
    return _envelope(f"{INVALID_PARAMETERS}: " + "; ".join(problems))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _envelope(str(exc.detail), exc.status_code)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _envelope("服务器内部错误", 500)


def create_app(state: AdminState) -> FastAPI:
    app = FastAPI(
        title="oneapi admin",
        summary="One API's management API",
        version=state.version,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        dependencies=[Depends(global_api_rate_limit)],
    )
    app.state.admin = state
    app.add_exception_handler(AdminError, _admin_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    for router in (
        misc_router,
        accounts_router,
        users_router,
        tokens_router,
        channels_router,
        redemptions_router,
        logs_router,
        options_router,
    ):
        app.include_router(router)
    return app
