"""The health service at work: channel tests, balance refreshes and relay outcomes.

Each unit of work is one transaction: a test's `response_time`/`test_time` with the status
change it calls for, a balance with its timestamp, or a status change from relay outcomes.
After the commit, and only when the database accepted a status change (the row was in the
expected state), the service publishes `ConfigChanged(entity="channel")`, writes a system log
and notifies root. Two replicas acting on the same evidence therefore change, publish and
notify once.

Relay outcomes reach every replica (fan-out), so each keeps the same success-rate windows;
requests from the admin (`health.test`, `health.balance`) reach one replica (queue group).
The disable rules act when the option `AutomaticDisableChannelEnabled` is on; a success rate
below `METRIC_SUCCESS_RATE_THRESHOLD` over a full window disables when `ENABLE_METRIC` is set
(One API's metric disabling did not look at the option either).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.bus import Bus, BusError
from libs.common.crypto import SecretBox
from libs.common.db import Database
from libs.common.db.models import ChannelStatus, Log
from libs.common.events import (
    CONFIG_ENTITIES,
    BalanceReply,
    BalanceRequest,
    BalanceResult,
    ChannelTestReply,
    ChannelTestRequest,
    ChannelTestResult,
    ConfigChanged,
    RelayOutcome,
)
from libs.common.options import OptionValues
from libs.common.settings import Settings
from services.health import repository
from services.health.metrics import HealthMetrics
from services.health.notify import Notifier
from services.health.probe import Prober
from services.health.rules import SuccessWindows, counts_as, disable_reason
from services.health.schemas import BalanceOutcome, ChannelRow, ProbeOutcome, Transition
from services.health.service import (
    Action,
    Verdict,
    log_of_test,
    success_rate_reason,
    transition_log,
    verdict_after_test,
)

logger = logging.getLogger(__name__)

R = TypeVar("R")

DISABLE_MEMO_SECONDS: Final = 2.0
"""After trying to disable a channel, later failures of it within this long skip the database
(a burst of 401s makes one UPDATE, not hundreds). Enabling it here forgets the memo; every
replica sees the outcomes, so the one that enabled it acts on the next failure at once."""
SCHEDULED_TEST_STATUSES: Final = (ChannelStatus.ENABLED, ChannelStatus.AUTO_DISABLED)
CHANNEL_ENTITIES: Final = frozenset({"channel", "ability", "all"})
OPTION_ENTITIES: Final = frozenset({"option", "all"})


class OptionsHolder:
    """The `options` table as health last read it."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.current = OptionValues()

    async def reload(self) -> None:
        async with self._database.session() as session:
            self.current = OptionValues(await repository.load_options(session))


@dataclass(frozen=True)
class MonitorConfig:
    """The settings the monitor works by."""

    enable_metric: bool = False
    metric_queue_size: int = 10
    metric_success_rate_threshold: float = 0.8
    polling_interval: float = 0.0
    concurrency: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitorConfig:
        return cls(
            enable_metric=settings.enable_metric,
            metric_queue_size=settings.metric_queue_size,
            metric_success_rate_threshold=settings.metric_success_rate_threshold,
            polling_interval=float(settings.polling_interval),
            concurrency=settings.channel_test_concurrency,
        )


def _always() -> bool:
    return True


class HealthMonitor:
    """Tests channels, refreshes balances, judges relay outcomes; see the module docstring."""

    def __init__(
        self,
        database: Database,
        bus: Bus,
        prober: Prober,
        notifier: Notifier,
        metrics: HealthMetrics,
        options: OptionsHolder,
        config: MonitorConfig,
        secrets: SecretBox,
    ) -> None:
        self._database = database
        self._secrets = secrets
        self._bus = bus
        self._prober = prober
        self._notifier = notifier
        self._metrics = metrics
        self._options = options
        self._config = config
        self._windows = SuccessWindows(config.metric_queue_size)
        self._disabling: dict[int, float] = {}
        self._testing_all = asyncio.Lock()
        self._refreshing_all = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    # --- relay outcomes ---------------------------------------------------------------------

    async def on_outcome(self, outcome: RelayOutcome) -> None:
        """Judge one upstream attempt: disable rules first, then the success-rate window."""
        channel_id = outcome.channel_id
        counted = counts_as(outcome.success, outcome.status_code)
        if counted is not None:
            rate = self._windows.record(channel_id, counted)
            self._metrics.success_rate.labels(str(channel_id)).set(rate)
        if not outcome.success and self._options.current.flag("AutomaticDisableChannelEnabled"):
            reason = disable_reason(
                outcome.status_code, outcome.error_type, outcome.error_code, outcome.error_message
            )
            if reason is not None:
                await self._disable_from_traffic(channel_id, reason, "rule")
                return
        threshold = self._config.metric_success_rate_threshold
        if self._config.enable_metric and counted is not None and self._windows.full(channel_id):
            rate_now = self._windows.rate(channel_id)
            if rate_now is not None and rate_now < threshold:
                reason = success_rate_reason(rate_now, threshold)
                await self._disable_from_traffic(channel_id, reason, "success_rate")

    async def _disable_from_traffic(self, channel_id: int, reason: str, cause: str) -> None:
        now = time.monotonic()
        if now - self._disabling.get(channel_id, -DISABLE_MEMO_SECONDS) < DISABLE_MEMO_SECONDS:
            return
        self._disabling[channel_id] = now
        verdict = Verdict(Action.DISABLE, reason, cause)
        async with self._database.session() as session:
            transition = await self._apply(session, channel_id, verdict)
        if transition is not None:
            await self._after_commit([transition], [])

    async def on_config_changed(self, event: ConfigChanged) -> None:
        """Channels changed: their windows start over. Options changed: read them again."""
        entity = event.entity if event.entity in CONFIG_ENTITIES else "all"
        if entity in OPTION_ENTITIES:
            await self._options.reload()
        if entity in CHANNEL_ENTITIES:
            if entity == "channel" and event.ids:
                for channel_id in event.ids:
                    self._windows.reset(channel_id)
            else:
                self._windows.reset_all()
            await self.refresh_statuses()

    async def refresh_statuses(self) -> None:
        """Read every channel's status into the status gauge."""
        async with self._database.session() as session:
            statuses = await repository.channel_statuses(session)
        self._metrics.set_statuses(statuses, complete=True)

    # --- channel tests ----------------------------------------------------------------------

    async def test_round(self, still_leading: Callable[[], bool] = _always) -> None:
        """The scheduled test: every enabled and automatically disabled channel."""
        if self._testing_all.locked():
            logger.info("skipping a scheduled test: a test of all channels is running")
            return
        async with self._testing_all:
            await self._options.reload()
            channels = await self._load(statuses=SCHEDULED_TEST_STATUSES)
            logger.info("testing %d channels", len(channels))
            await self._paced(channels, self.test_channel, still_leading)
            await self.refresh_statuses()

    async def test_channel(self, channel: ChannelRow, model: str = "") -> ChannelTestResult:
        """Test one channel, record it, and enable or disable it as the result calls for."""
        outcome = await self._prober.test(channel, self._prober.model_for(channel, model))
        result_name = "passed" if outcome.success else "failed"
        self._metrics.test_latency.labels(str(channel.id), result_name).observe(
            outcome.elapsed_ms / 1000
        )
        verdict = verdict_after_test(channel, outcome, self._options.current)
        now = int(time.time())
        transition: Transition | None = None
        status = channel.status
        try:
            async with self._database.session() as session:
                await repository.record_test(
                    session, channel.id, response_time_ms=outcome.elapsed_ms, tested_at=now
                )
                if verdict is not None:
                    transition = await self._apply(session, channel.id, verdict, channel)
        except Exception as exc:
            logger.exception("recording the test of channel #%d failed", channel.id)
            return self._test_result(
                channel, outcome, status, f"not recorded: {type(exc).__name__}"
            )
        if transition is not None:
            status = transition.status
        await self._after_commit(
            [transition] if transition else [], [log_of_test(channel, outcome, now)]
        )
        return self._test_result(channel, outcome, status)

    @staticmethod
    def _test_result(
        channel: ChannelRow, outcome: ProbeOutcome, status: int, note: str = ""
    ) -> ChannelTestResult:
        message = outcome.message if not note else f"{outcome.message} ({note})".strip()
        return ChannelTestResult(
            channel_id=channel.id,
            name=channel.name,
            model=outcome.model,
            success=outcome.success,
            message=message,
            response_time_ms=outcome.elapsed_ms,
            status=status,
        )

    async def answer_test(self, request: ChannelTestRequest) -> ChannelTestReply:
        """`health.test`: listed channels now; all of them now or in the background."""
        try:
            if request.channel_ids:
                await self._options.reload()  # an operator may just have changed them
                channels = await self._load(ids=request.channel_ids)
                found = {channel.id for channel in channels}
                results = await self._paced(
                    channels, lambda channel: self.test_channel(channel, request.model)
                )
                missing = [
                    ChannelTestResult(channel_id=i, success=False, message=f"no channel #{i}")
                    for i in request.channel_ids
                    if i not in found
                ]
                return ChannelTestReply(results=[*results, *missing])
            if self._testing_all.locked():
                return ChannelTestReply(message="a test of all channels is already running")
            statuses = (
                (ChannelStatus.AUTO_DISABLED,) if request.only_disabled else SCHEDULED_TEST_STATUSES
            )
            work = self._test_all(statuses, request.model)
            if request.wait:
                return ChannelTestReply(results=await work)
            self._in_background(work)
            return ChannelTestReply(started=True, message="testing started")
        except Exception as exc:
            logger.exception("answering a channel test request failed")
            return ChannelTestReply(message=f"health could not test: {type(exc).__name__}")

    async def _test_all(self, statuses: Sequence[int], model: str) -> list[ChannelTestResult]:
        async with self._testing_all:
            await self._options.reload()
            channels = await self._load(statuses=statuses)
            results = await self._paced(channels, lambda channel: self.test_channel(channel, model))
            await self.refresh_statuses()
            return results

    # --- balances ---------------------------------------------------------------------------

    async def balance_round(self, still_leading: Callable[[], bool] = _always) -> None:
        """The scheduled refresh: every enabled channel whose type has a balance API."""
        if self._refreshing_all.locked():
            return
        async with self._refreshing_all:
            channels = await self._load(statuses=(ChannelStatus.ENABLED,))
            await self._paced(channels, self.refresh_balance, still_leading)

    async def refresh_balance(self, channel: ChannelRow) -> BalanceResult:
        """Query one channel's balance and store it."""
        outcome: BalanceOutcome = await self._prober.balance(channel)
        if outcome.balance is None:
            result = "unsupported" if outcome.unsupported else "failed"
            self._metrics.balance_refreshes.labels(result).inc()
            if not outcome.unsupported:
                logger.info("balance of channel #%d not read: %s", channel.id, outcome.message)
            return BalanceResult(
                channel_id=channel.id,
                name=channel.name,
                success=False,
                message=outcome.message,
                unsupported=outcome.unsupported,
            )
        try:
            async with self._database.session() as session:
                await repository.store_balance(
                    session, channel.id, balance=outcome.balance, updated_at=int(time.time())
                )
        except Exception as exc:
            logger.exception("storing the balance of channel #%d failed", channel.id)
            self._metrics.balance_refreshes.labels("failed").inc()
            return BalanceResult(
                channel_id=channel.id,
                name=channel.name,
                success=False,
                balance=outcome.balance,
                message=f"balance not stored: {type(exc).__name__}",
            )
        self._metrics.balance_refreshes.labels("ok").inc()
        self._metrics.balance.labels(str(channel.id)).set(outcome.balance)
        return BalanceResult(
            channel_id=channel.id, name=channel.name, success=True, balance=outcome.balance
        )

    async def answer_balance(self, request: BalanceRequest) -> BalanceReply:
        """`health.balance`: listed channels now; every enabled one now or in the background."""
        try:
            if request.channel_ids:
                channels = await self._load(ids=request.channel_ids)
                found = {channel.id for channel in channels}
                results = await self._paced(channels, self.refresh_balance)
                missing = [
                    BalanceResult(channel_id=i, success=False, message=f"no channel #{i}")
                    for i in request.channel_ids
                    if i not in found
                ]
                return BalanceReply(results=[*results, *missing])
            if self._refreshing_all.locked():
                return BalanceReply(message="a refresh of all balances is already running")
            work = self._refresh_all()
            if request.wait:
                return BalanceReply(results=await work)
            self._in_background(work)
            return BalanceReply(started=True, message="balance refresh started")
        except Exception as exc:
            logger.exception("answering a balance request failed")
            return BalanceReply(message=f"health could not refresh: {type(exc).__name__}")

    async def _refresh_all(self) -> list[BalanceResult]:
        async with self._refreshing_all:
            channels = await self._load(statuses=(ChannelStatus.ENABLED,))
            return await self._paced(channels, self.refresh_balance)

    # --- transitions ------------------------------------------------------------------------

    async def _apply(
        self,
        session: AsyncSession,
        channel_id: int,
        verdict: Verdict,
        channel: ChannelRow | None = None,
    ) -> Transition | None:
        """Make `verdict` happen in `session` if the channel is in the state it expects."""
        changed = await repository.change_status(
            session, channel_id, expected=verdict.expected, new=verdict.new
        )
        if not changed:
            return None
        if channel is None:
            [channel] = await repository.load_channels(session, self._secrets, ids=[channel_id])
        return Transition(
            channel_id=channel_id,
            name=channel.name,
            type=channel.type,
            status=verdict.new,
            reason=verdict.reason,
            cause=verdict.cause,
            at=int(time.time()),
        )

    async def _after_commit(self, transitions: Sequence[Transition], logs: Sequence[Log]) -> None:
        """Tell relays, log and notify root about committed transitions; write `logs`."""
        rows = [*logs, *(transition_log(t) for t in transitions)]
        if transitions:
            ids = [t.channel_id for t in transitions]
            try:
                await self._bus.publish(ConfigChanged(entity="channel", ids=ids))
            except BusError as exc:
                # Relays resync every SYNC_FREQUENCY: the change reaches them late, not never.
                logger.warning("channels %s changed but not announced: %s", ids, exc)
            for transition in transitions:
                self._windows.reset(transition.channel_id)
                if not transition.disabled:
                    self._disabling.pop(transition.channel_id, None)
                self._metrics.channel_status.labels(str(transition.channel_id)).set(
                    transition.status
                )
                to = "auto_disabled" if transition.disabled else "enabled"
                self._metrics.transitions.labels(to, transition.cause).inc()
                logger.warning(
                    "channel #%d (%s) %s: %s",
                    transition.channel_id,
                    transition.name,
                    "disabled" if transition.disabled else "enabled",
                    transition.reason,
                )
                self._notifier.notify(transition)
        if rows:
            try:
                async with self._database.log_session() as session:
                    await repository.add_logs(session, rows)
            except Exception:
                logger.exception("writing %d health logs failed", len(rows))

    # --- plumbing ---------------------------------------------------------------------------

    async def _load(
        self, *, ids: Sequence[int] | None = None, statuses: Sequence[int] | None = None
    ) -> list[ChannelRow]:
        async with self._database.session() as session:
            return await repository.load_channels(
                session, self._secrets, ids=ids, statuses=statuses
            )

    async def _paced(
        self,
        channels: Sequence[ChannelRow],
        work: Callable[[ChannelRow], Awaitable[R]],
        still: Callable[[], bool] = _always,
    ) -> list[R]:
        """`work` on each channel: at most `concurrency` at once, `polling_interval` seconds
        between starts; no new start once `still()` turns false."""
        semaphore = asyncio.Semaphore(self._config.concurrency)
        tasks: list[asyncio.Task[R]] = []

        async def bounded(channel: ChannelRow) -> R:
            try:
                return await work(channel)
            finally:
                semaphore.release()

        try:
            for index, channel in enumerate(channels):
                if index and self._config.polling_interval > 0:
                    await asyncio.sleep(self._config.polling_interval)
                await semaphore.acquire()
                if not still():
                    semaphore.release()
                    logger.info("stopped after %d of %d channels", index, len(channels))
                    break
                tasks.append(asyncio.create_task(bounded(channel)))
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()

    def _in_background(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("background health work failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        """Cancel work started for requests that did not wait."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
