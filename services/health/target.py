"""The health target: keeps bad channels out of rotation and brings good ones back.

Starts, on the process's database and bus:

* the outcome judge: every `relay.outcome` (fan-out, so every replica keeps the same
  success-rate windows) against One API's disable rules and `ENABLE_METRIC`'s window;
* the request servers `health.test` and `health.balance` (queue group: one replica answers);
* with `CHANNEL_TEST_FREQUENCY` / `CHANNEL_UPDATE_FREQUENCY` (or their `*_PERIOD_SECONDS`
  forms), the schedule: one replica holds a NATS KV lease and runs each round once per period
  (`scheduler.py`);
* the options it works by (`AutomaticDisableChannelEnabled`, `ChannelDisableThreshold`, SMTP,
  ...), read again on `config.changed` and every `SYNC_FREQUENCY`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Final

import aiohttp
from nats.aio.subscription import Subscription

from libs.common.bus import Bus
from libs.common.crypto import SecretBox
from libs.common.db import Database
from libs.common.events import (
    HEALTH_QUEUE,
    BalanceRequest,
    ChannelTestRequest,
    ConfigChanged,
    RelayOutcome,
)
from libs.common.runtime import Context, Module
from libs.providers import Adaptors
from services.health.metrics import HealthMetrics
from services.health.monitor import HealthMonitor, MonitorConfig, OptionsHolder
from services.health.notify import Notifier
from services.health.probe import Prober
from services.health.scheduler import Lease, Scheduler

logger = logging.getLogger(__name__)

DEFAULT_TEST_TIMEOUT_SECONDS: Final = 60.0
"""How long a channel test may take when `RELAY_TIMEOUT` is unset."""
NOTIFY_DRAIN_SECONDS: Final = 5.0


class HealthModule(Module):
    name = "health"

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._monitor: HealthMonitor | None = None
        self._notifier: Notifier | None = None
        self._lease: Lease | None = None
        self._subscriptions: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, ctx: Context) -> None:
        settings = ctx.settings
        database = ctx.get(Database)
        bus = ctx.get(Bus)
        metrics = HealthMetrics(ctx.metrics)
        options = OptionsHolder(database)
        await options.reload()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            proxy=settings.relay_proxy or None,
        )
        prober = Prober(
            Adaptors.from_settings(settings),
            self._http,
            prompt=settings.test_prompt,
            timeout=float(settings.relay_timeout) or DEFAULT_TEST_TIMEOUT_SECONDS,
        )
        self._notifier = Notifier(
            database,
            lambda: options.current,
            self._http,
            metrics,
            webhook_url=settings.notify_webhook_url,
            webhook_secret=settings.notify_webhook_secret,
        )
        monitor = HealthMonitor(
            database,
            bus,
            prober,
            self._notifier,
            metrics,
            options,
            MonitorConfig.from_settings(settings),
            SecretBox(settings.crypto_secret),
        )
        self._monitor = monitor
        await monitor.refresh_statuses()
        self._subscriptions = [
            await bus.subscribe(RelayOutcome, monitor.on_outcome),
            await bus.subscribe(ConfigChanged, monitor.on_config_changed),
            await bus.serve(ChannelTestRequest, monitor.answer_test, queue=HEALTH_QUEUE),
            await bus.serve(BalanceRequest, monitor.answer_balance, queue=HEALTH_QUEUE),
        ]
        self._tasks.append(
            ctx.spawn(
                self._refresh_options(options, settings.sync_frequency), name="health-options"
            )
        )
        test_period = settings.channel_test_period
        balance_period = settings.channel_update_period
        if test_period is None and balance_period is None:
            return
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        lease = Lease(
            bus,
            ttl=settings.health_lease_seconds,
            holder=holder,
            on_change=lambda held: metrics.leader.set(1 if held else 0),
        )
        await lease.open()
        self._lease = lease
        scheduler = Scheduler(bus, lease, metrics, holder=holder)
        await scheduler.open()
        self._tasks.append(ctx.spawn(lease.run(), name="health-lease"))
        if test_period is not None:
            logger.info("testing channels every %g s", test_period)
            self._tasks.append(
                ctx.spawn(
                    scheduler.run("test", test_period, monitor.test_round), name="health-test"
                )
            )
        if balance_period is not None:
            logger.info("refreshing balances every %g s", balance_period)
            self._tasks.append(
                ctx.spawn(
                    scheduler.run("balance", balance_period, monitor.balance_round),
                    name="health-balance",
                )
            )

    @staticmethod
    async def _refresh_options(options: OptionsHolder, every_seconds: int) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await options.reload()
            except Exception:
                logger.exception("reloading options failed; keeping the previous ones")

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # the connection may be gone already
                logger.debug("unsubscribing failed: %r", exc)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._lease is not None:
            await self._lease.release()
        if self._monitor is not None:
            await self._monitor.stop()
        if self._notifier is not None:
            await self._notifier.drain(NOTIFY_DRAIN_SECONDS)
        if self._http is not None:
            await self._http.close()
