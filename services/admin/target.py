"""The admin target: owns the schema and serves One API's management API."""

from __future__ import annotations

from libs.common.bus import Bus
from libs.common.cache import Cache
from libs.common.db import Database
from libs.common.runtime import Context, Module
from services.admin.app import create_app
from services.admin.logs.retention import LogRetention
from services.admin.security import SessionCodec
from services.admin.state import AdminState
from services.admin.ui import WebUi


class AdminModule(Module):
    name = "admin"

    async def start(self, ctx: Context) -> None:
        state = AdminState(
            settings=ctx.settings,
            database=ctx.get(Database),
            bus=ctx.get(Bus),
            cache=ctx.get(Cache),  # type: ignore[type-abstract]
            sessions=SessionCodec(ctx.settings.session_secret),
            version=ctx.version,
        )
        ctx.router.mount("/api", create_app(state))
        ctx.router.mount("/", WebUi(state))
        ctx.spawn(LogRetention(state.database, state.cache).run(), name="admin-log-retention")
