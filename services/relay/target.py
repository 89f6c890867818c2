"""The relay target: OpenAI-compatible ingress, wired to the process's database, bus and cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from libs.common.bus import Bus
from libs.common.cache import Cache
from libs.common.crypto import SecretBox
from libs.common.db import Database
from libs.common.events import ConfigChanged, QuotaUpdated
from libs.common.runtime import Context, Module
from libs.common.tokenizer import Tokenizer
from libs.providers.registry import Adaptors
from services.relay.accounts import Accounts
from services.relay.admission import Account, Ledger, ledger_for
from services.relay.app import create_app
from services.relay.catalog import load_catalog
from services.relay.limits import Limiter
from services.relay.metrics import RelayMetrics
from services.relay.publisher import UsagePublisher
from services.relay.service import CatalogHolder, Relay

logger = logging.getLogger(__name__)

CATALOG_ENTITIES = frozenset({"channel", "ability", "option", "all"})
TOKEN_EXHAUSTED = 4
# Events arrive in bursts (an admin saving several channels); one reload serves them all.
RELOAD_COALESCE_SECONDS = 0.1


class RelayModule(Module):
    name = "relay"

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._publisher: UsagePublisher | None = None
        self._relay: Relay | None = None
        self._reload = asyncio.Event()

    async def start(self, ctx: Context) -> None:
        settings = ctx.settings
        database = ctx.get(Database)
        bus = ctx.get(Bus)
        cache = ctx.get(Cache)  # type: ignore[type-abstract]
        self._database = database
        self._secrets = SecretBox(settings.crypto_secret)
        self._catalogs = CatalogHolder(await load_catalog(database, self._secrets))
        tokenizer = Tokenizer.from_settings(settings)
        await asyncio.to_thread(tokenizer.preload)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            proxy=settings.relay_proxy or None,
            auto_decompress=True,
        )
        metrics = RelayMetrics(ctx.metrics)
        self._accounts = Accounts(
            database, cache, ttl=min(settings.sync_frequency, 60), on_lookup=metrics.cache_lookup
        )
        self._ledger: Ledger = ledger_for(cache)
        self._publisher = UsagePublisher(
            bus,
            registry=ctx.metrics,
            spill_dir=settings.data_dir / "relay",
            tracer=ctx.tracing.tracer,
        )
        await self._publisher.start()
        limiter = Limiter(
            cache,
            max_concurrency=settings.relay_max_concurrency,
            token_rpm=settings.relay_token_rpm,
            user_rpm=settings.relay_user_rpm,
        )
        metrics.in_flight.set_function(lambda: limiter.in_flight)
        self._relay = Relay(
            settings=settings,
            catalogs=self._catalogs,
            accounts=self._accounts,
            ledger=self._ledger,
            publisher=self._publisher,
            adaptors=Adaptors.from_settings(settings),
            tokenizer=tokenizer,
            http=self._http,
            metrics=metrics,
            limiter=limiter,
            tracer=ctx.tracing.tracer,
        )
        await bus.subscribe(ConfigChanged, self._on_config_changed)
        await bus.subscribe(QuotaUpdated, self._on_quota_updated)
        ctx.spawn(self._keep_catalog_fresh(settings.sync_frequency), name="relay-catalog")
        app = create_app(self._relay)
        ctx.router.mount("/v1", app)
        # /dashboard itself is the web UI's page (admin, mounted at "/"): only billing is ours.
        ctx.router.mount("/dashboard/billing", app)

    async def _on_config_changed(self, event: ConfigChanged) -> None:
        if event.entity in CATALOG_ENTITIES or event.entity not in ("token", "user"):
            self._reload.set()
        if event.entity in ("token", "all"):
            await self._accounts.forget_tokens(event.ids, event.keys)
            for token_id in event.ids:
                await self._ledger.forget(Account.token(token_id))
        if event.entity in ("user", "all"):
            await self._accounts.forget_users(event.ids)
            for user_id in event.ids:
                await self._ledger.forget(Account.user(user_id))

    async def _on_quota_updated(self, event: QuotaUpdated) -> None:
        await self._ledger.settle(event)
        # An exhausted token is refused at authentication, before any reservation.
        exhausted = [token.id for token in event.tokens if token.status == TOKEN_EXHAUSTED]
        if exhausted:
            await self._accounts.forget_tokens(exhausted, [])

    async def _keep_catalog_fresh(self, every_seconds: int) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), timeout=every_seconds)
            await asyncio.sleep(RELOAD_COALESCE_SECONDS)
            self._reload.clear()
            try:
                self._catalogs.current = await load_catalog(self._database, self._secrets)
            except Exception:
                logger.exception("catalog reload failed; keeping the previous one")

    async def stop(self) -> None:
        if self._relay is not None:
            await self._relay.drain()
        if self._publisher is not None:
            await self._publisher.stop()
        if self._http is not None:
            await self._http.close()
