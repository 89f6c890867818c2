"""The health target: channel tests, balances and automatic disabling (with their issue)."""

from __future__ import annotations

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.runtime import Context, Module


class HealthModule(Module):
    name = "health"

    async def start(self, ctx: Context) -> None:
        ctx.get(Database)
        ctx.get(Bus)
