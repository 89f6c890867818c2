"""The admin target: owns the schema and serves One API's management API."""

from __future__ import annotations

from libs.common.db import Database
from libs.common.runtime import Context, Module
from services.admin.app import create_app


class AdminModule(Module):
    name = "admin"

    async def start(self, ctx: Context) -> None:
        app = create_app(ctx.get(Database), version=ctx.version)
        ctx.router.mount("/api", app)
