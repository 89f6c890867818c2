"""The admin's FastAPI application: One API's `/api`."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from libs.common.db import Database
from services.admin.misc.endpoints import router as misc_router


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # One API answers handled errors with HTTP 200 and success=false.
    return JSONResponse({"success": False, "message": "无效的参数"})


def create_app(database: Database, *, version: str) -> FastAPI:
    app = FastAPI(
        title="oneapi admin",
        version=version,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.database = database
    app.state.start_time = int(time.time())
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(misc_router)
    return app
