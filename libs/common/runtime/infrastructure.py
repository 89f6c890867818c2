"""The modules every target builds on: database, schema, bus and cache.

Each provides one resource on the context. `schema` migrates when this process runs the admin
target on a master node (the only writer of the schema) and otherwise waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from libs.common.bus import Bus, EmbeddedNats
from libs.common.cache import Cache, cache_from_settings
from libs.common.db import Database
from libs.common.db.migrations import upgrade, wait_for_schema
from libs.common.db.seed import seed_first_start
from libs.common.runtime.context import Context
from libs.common.runtime.modules import Module, ModuleRegistry, ModuleSpec

logger = logging.getLogger(__name__)


class DatabaseModule(Module):
    """Opens the database pools and waits until the server answers."""

    name = "database"

    def __init__(self) -> None:
        self._database: Database | None = None

    async def start(self, ctx: Context) -> None:
        database = Database.from_settings(ctx.settings)
        self._database = database
        deadline = time.monotonic() + ctx.settings.database_wait_seconds
        while True:
            try:
                await database.ping()
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise
                logger.warning("database not reachable yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1)
        ctx.provide(database)

    async def stop(self) -> None:
        if self._database is not None:
            await self._database.dispose()


class SchemaModule(Module):
    """Brings the schema to head (admin on a master node) or waits until it is there."""

    name = "schema"

    async def start(self, ctx: Context) -> None:
        database = ctx.get(Database)
        if "admin" in ctx.targets and ctx.settings.node_type == "master":
            await upgrade(database)
            await seed_first_start(database, ctx.settings)
        else:
            logger.info("waiting for the admin target to migrate the schema")
            await wait_for_schema(database, timeout=ctx.settings.schema_wait_seconds)


class BusModule(Module):
    """Connects to NATS (starting an embedded nats-server when NATS_URL is unset)."""

    name = "bus"

    def __init__(self) -> None:
        self._embedded: EmbeddedNats | None = None
        self._bus: Bus | None = None

    async def start(self, ctx: Context) -> None:
        url = ctx.settings.nats_url
        if not url:
            self._embedded = EmbeddedNats(ctx.settings.data_dir)
            await self._embedded.start()
            url = self._embedded.url
        client_name = "oneapi-" + "-".join(sorted(ctx.targets))
        self._bus = await Bus.connect(url, namespace=ctx.settings.nats_namespace, name=client_name)
        await self._bus.ensure_streams()
        ctx.provide(self._bus)

    async def stop(self) -> None:
        if self._bus is not None:
            await self._bus.close()
        if self._embedded is not None:
            await self._embedded.stop()


class CacheModule(Module):
    """Redis when REDIS_CONN_STRING is set, an in-process cache otherwise."""

    name = "cache"

    def __init__(self) -> None:
        self._cache: Cache | None = None

    async def start(self, ctx: Context) -> None:
        self._cache = cache_from_settings(ctx.settings)
        ctx.provide(self._cache, Cache)

    async def stop(self) -> None:
        if self._cache is not None:
            await self._cache.close()


def add_infrastructure(registry: ModuleRegistry) -> None:
    registry.add(ModuleSpec("database", DatabaseModule))
    registry.add(ModuleSpec("schema", SchemaModule, ("database",)))
    registry.add(ModuleSpec("bus", BusModule))
    registry.add(ModuleSpec("cache", CacheModule))
