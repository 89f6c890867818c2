"""The billing target: turns the usage stream into money (consumer comes with its issue)."""

from __future__ import annotations

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.runtime import Context, Module


class BillingModule(Module):
    name = "billing"

    async def start(self, ctx: Context) -> None:
        # The resources billing works with; resolving them here fails fast on a wiring error.
        ctx.get(Database)
        ctx.get(Bus)
