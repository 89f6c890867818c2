"""A relay running in the test's event loop on real services, with channels and tokens seeded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from libs.common.bus import Bus, PullConsumer
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Ability, Channel, Token, User, UserRole
from libs.common.db.seed import seed_first_start
from libs.common.events import BILLING_CONSUMER, UsageEvent
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from oneapi.targets import build_registry

ROOT_TOKEN = "roottoken000000000000000000000000000000000000000"


@dataclass
class SeedChannel:
    name: str
    type: int
    base_url: str
    models: list[str]
    key: str = "sk-upstream"
    priority: int = 0
    weight: int = 0
    group: str = "default"
    model_mapping: str = ""
    system_prompt: str = ""
    config: str = ""
    status: int = 1
    id: int = 0


@dataclass
class Stack:
    runtime: Runtime
    database: Database
    bus: Bus
    settings: Settings
    channels: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.http.port}/v1"

    @property
    def root_key(self) -> str:
        return "sk-" + ROOT_TOKEN

    async def add_token(
        self,
        key: str,
        *,
        user_id: int = 1,
        remain_quota: int = 0,
        unlimited: bool = True,
        **fields: object,
    ) -> int:
        async with self.database.session() as session:
            token = Token(
                user_id=user_id,
                key=key,
                name=f"token-{key[:6]}",
                remain_quota=remain_quota,
                unlimited_quota=unlimited,
                created_time=int(time.time()),
                **fields,
            )
            session.add(token)
            await session.flush()
            return token.id

    async def add_user(
        self, username: str, *, quota: int, role: int = UserRole.COMMON, group: str = "default"
    ) -> int:
        async with self.database.session() as session:
            user = User(username=username, password="x", role=role, quota=quota, group=group)
            session.add(user)
            await session.flush()
            return user.id

    async def usage_events(self, count: int, timeout: float = 10) -> list[UsageEvent]:
        """The next `count` usage events the relay published (read as billing would)."""
        consumer: PullConsumer[UsageEvent] = await self.bus.pull_consumer(
            UsageEvent, BILLING_CONSUMER
        )
        events: list[UsageEvent] = []
        deadline = time.monotonic() + timeout
        try:
            while len(events) < count and time.monotonic() < deadline:
                for delivery in await consumer.fetch(batch=count - len(events), timeout=0.5):
                    assert delivery.event is not None
                    events.append(delivery.event)
                    await delivery.ack()
        finally:
            await consumer.unsubscribe()
        return events


async def seed_channels(database: Database, channels: Iterable[SeedChannel]) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with database.session() as session:
        for spec in channels:
            row = Channel(
                name=spec.name,
                type=spec.type,
                key=spec.key,
                base_url=spec.base_url,
                models=",".join(spec.models),
                group=spec.group,
                priority=spec.priority,
                weight=spec.weight,
                model_mapping=spec.model_mapping or None,
                system_prompt=spec.system_prompt or None,
                config=spec.config,
                status=spec.status,
                created_time=int(time.time()),
            )
            session.add(row)
            await session.flush()
            ids[spec.name] = row.id
            for group in spec.group.split(","):
                for model in spec.models:
                    session.add(
                        Ability(
                            group=group,
                            model=model,
                            channel_id=row.id,
                            enabled=spec.status == 1,
                            priority=spec.priority,
                        )
                    )
    return ids


@asynccontextmanager
async def relay_stack(
    *,
    sql_dsn: str,
    nats_url: str,
    namespace: str,
    channels: Iterable[SeedChannel],
    redis_url: str = "",
    options: dict[str, str] | None = None,
    **settings: object,
) -> AsyncIterator[Stack]:
    config = Settings(
        port=0,
        host="127.0.0.1",
        sql_dsn=sql_dsn,
        nats_url=nats_url,
        nats_namespace=namespace,
        redis_conn_string=redis_url,
        initial_root_token=ROOT_TOKEN,
        shutdown_grace_seconds=5,
        **settings,  # type: ignore[arg-type]
    )
    database = Database.from_settings(config)
    await upgrade(database)
    await seed_first_start(database, config)
    ids = await seed_channels(database, channels)
    if options:
        from libs.common.db.models import Option

        async with database.session() as session:
            for key, value in options.items():
                session.add(Option(key=key, value=value))
    runtime = Runtime(config, build_registry(), ["relay"], version="test")
    bus = await Bus.connect(nats_url, namespace=namespace)
    await runtime.start()
    try:
        yield Stack(runtime, database, bus, config, ids)
    finally:
        await runtime.stop()
        await bus.close()
        await database.dispose()
        await asyncio.sleep(0)
