"""The billing target: turns the usage stream into money, each request charged once.

Starts the consumer (`consumer.py`) and its companions: the options it reads
(`LogConsumeEnabled`, `QuotaRemindThreshold`, SMTP), refreshed on `config.changed` and every
`SYNC_FREQUENCY`; the consumer-lag gauge; the pruning of old settled request ids. On stop it
lets the batch in hand finish before the bus and the database close.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.events import ConfigChanged
from libs.common.runtime import Context, Module
from services.billing.consumer import DEFAULT_BATCH_SIZE, BillingConsumer, OptionsHolder
from services.billing.mail import Reminders
from services.billing.metrics import BillingMetrics

logger = logging.getLogger(__name__)

STOP_SECONDS: Final = 20.0
"""How long stopping waits for the batch in hand (its transaction and acks)."""
MAIL_DRAIN_SECONDS: Final = 5.0
OPTION_ENTITIES: Final = frozenset({"option", "all"})


class BillingModule(Module):
    name = "billing"

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._batch_size = batch_size
        self._consumer: BillingConsumer | None = None
        self._reminders: Reminders | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._run: asyncio.Task[None] | None = None

    async def start(self, ctx: Context) -> None:
        database = ctx.get(Database)
        bus = ctx.get(Bus)
        metrics = BillingMetrics(ctx.metrics)
        self._options = OptionsHolder(database)
        await self._options.reload()
        self._reminders = Reminders(lambda: self._options.current, metrics)
        consumer = BillingConsumer(
            database,
            bus,
            metrics,
            self._options,
            self._reminders,
            batch_size=self._batch_size,
            batch_interval=float(ctx.settings.batch_update_interval),
            tracer=ctx.tracing.tracer,
        )
        await consumer.bind()
        self._consumer = consumer
        await bus.subscribe(ConfigChanged, self._on_config_changed)
        self._run = ctx.spawn(consumer.run(), name="billing-consumer")
        self._tasks = [
            ctx.spawn(consumer.poll_lag(), name="billing-lag"),
            ctx.spawn(consumer.prune(), name="billing-prune"),
            ctx.spawn(self._refresh_options(ctx.settings.sync_frequency), name="billing-options"),
        ]

    async def _on_config_changed(self, event: ConfigChanged) -> None:
        if event.entity in OPTION_ENTITIES:
            await self._options.reload()

    async def _refresh_options(self, every_seconds: int) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self._options.reload()
            except Exception:
                logger.exception("reloading options failed; keeping the previous ones")

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
        if self._run is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._run), timeout=STOP_SECONDS)
            except TimeoutError:
                logger.warning("the batch in hand did not finish in time; it will be redelivered")
                self._run.cancel()
            except Exception:
                logger.exception("the billing consumer failed while stopping")
        tasks = [*self._tasks, *([self._run] if self._run is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._reminders is not None:
            await self._reminders.drain(MAIL_DRAIN_SECONDS)
