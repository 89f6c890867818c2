"""Two health processes (`oneapi run --target health`) share one schedule and one verdict."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.models import ChannelStatus, LogType
from libs.common.events import ConfigChanged
from tests.fakes import FakeUpstream
from tests.harness.process import OneapiProcess
from tests.services.health.support import (
    WEBHOOK_SECRET,
    Health,
    WebhookReceiver,
    eventually,
    health_settings,
    prepare_database,
)
from tests.services.relay.stack import SeedChannel

pytestmark = pytest.mark.slow

PERIOD = 1.0


def sample(process: OneapiProcess, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(process.get("/metrics").text):
        for metric in family.samples:
            if metric.name == name and all(metric.labels.get(k) == v for k, v in labels.items()):
                return float(metric.value)
    return None


class Arrivals:
    """When each request with a given key reached the fake (polled every few milliseconds)."""

    def __init__(self, fake: FakeUpstream, key: str) -> None:
        self.fake = fake
        self.key = key
        self.times: list[float] = []

    def count(self) -> int:
        return sum(1 for request in self.fake.requests if request.key == self.key)

    async def watch(self) -> None:
        while True:
            seen = self.count()
            while len(self.times) < seen:
                self.times.append(time.monotonic())
            await asyncio.sleep(0.005)

    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:], strict=False)]


async def test_two_processes_run_each_scheduled_test_once_and_act_once_on_an_outcome(
    postgres_url: str, nats_url: str, nats_namespace: str, tmp_path: Path
) -> None:
    with FakeUpstream("openai") as fake:  # its own thread: it answers while the test blocks
        async with WebhookReceiver() as hook:
            config = health_settings(postgres_url, nats_url, nats_namespace)
            database = Database.from_settings(config)
            channels = [
                SeedChannel("tested", 1, fake.url, ["gpt-4o-mini"], key="k-tested"),
                SeedChannel("victim", 1, fake.url, ["gpt-4o-mini"], key="k-victim"),
            ]
            ids = await prepare_database(
                database, config, channels, {"AutomaticDisableChannelEnabled": "true"}
            )
            bus = await Bus.connect(nats_url, namespace=nats_namespace)
            view = Health(None, database, bus, config, ids)  # type: ignore[arg-type]

            async def record(event: ConfigChanged) -> None:
                view.changes.append(event)

            await bus.subscribe(ConfigChanged, record)
            env = {
                "SQL_DSN": postgres_url,
                "NATS_URL": nats_url,
                "NATS_NAMESPACE": nats_namespace,
                "CHANNEL_TEST_PERIOD_SECONDS": str(PERIOD),
                "HEALTH_LEASE_SECONDS": "2",
                "NOTIFY_WEBHOOK_URL": hook.url,
                "NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
            arrivals = Arrivals(fake, "k-tested")
            watcher = asyncio.create_task(arrivals.watch())
            processes = [
                OneapiProcess(["run", "--target", "health"], data_dir=tmp_path / name, env=env)
                for name in ("a", "b")
            ]
            try:
                with processes[0], processes[1]:
                    await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes))

                    # a relay's 401 reaches both: one disables, publishes and notifies
                    await view.outcome("victim", status_code=401, error_message="Invalid key")
                    await view.wait_status("victim", ChannelStatus.AUTO_DISABLED)
                    victim = str(ids["victim"])

                    def both_saw_it() -> bool:
                        return all(
                            sample(p, "oneapi_health_channel_status", channel=victim) == 3
                            and sample(p, "oneapi_health_channel_success_rate", channel=victim) == 0
                            for p in processes
                        )

                    await eventually(both_saw_it, timeout=10)
                    await eventually(lambda: len(hook.deliveries) >= 1, timeout=10)
                    assert view.changed_channels().count(ids["victim"]) == 1
                    assert len(await view.logs(LogType.SYSTEM)) == 1
                    assert len(hook.deliveries) == 1
                    assert hook.deliveries[0].signature_valid

                    # one of them holds the schedule; each round tests the channel once
                    await eventually(lambda: arrivals.count() >= 4, timeout=15)
                    leaders = [sample(p, "oneapi_health_scheduler_leader") for p in processes]
                    assert sorted(leader or 0.0 for leader in leaders) == [0.0, 1.0], leaders
                    assert min(arrivals.gaps()) > PERIOD * 0.8, arrivals.gaps()
                    rounds = [
                        sample(p, "oneapi_health_scheduled_rounds_total", round="test") or 0
                        for p in processes
                    ]
                    assert rounds[leaders.index(0.0)] == 0

                    # the holder dies: the other takes the schedule over, keeping the period
                    holder, other = (
                        (processes[0], processes[1])
                        if leaders[0] == 1.0
                        else (processes[1], processes[0])
                    )
                    holder.stop(signal.SIGKILL)
                    before = arrivals.count()
                    await eventually(lambda: arrivals.count() >= before + 2, timeout=15)
                    assert sample(other, "oneapi_health_scheduler_leader") == 1.0
                    assert min(arrivals.gaps()) > PERIOD * 0.8, arrivals.gaps()
                    assert other.stop() == 0, other.output()
            finally:
                watcher.cancel()
                await bus.close()
                await database.dispose()
