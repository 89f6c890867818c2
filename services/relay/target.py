"""The relay target: OpenAI-compatible ingress."""

from __future__ import annotations

from libs.common.runtime import Context, Module
from services.relay.app import create_app


class RelayModule(Module):
    name = "relay"

    async def start(self, ctx: Context) -> None:
        app = create_app()
        ctx.router.mount("/v1", app)
        ctx.router.mount("/dashboard", app)
