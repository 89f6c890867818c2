"""Exactness through crashes: SIGKILLed billing processes, a NATS restart, a PostgreSQL restart.

Everything restarted here belongs to the test: a PostgreSQL cluster of its own (initdb as the
postgres user, on a free port, in a temporary directory) and an embedded nats-server with a
data directory. The machine's shared PostgreSQL and NATS are never touched.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from libs.common.bus import Bus, BusUnavailable, EmbeddedNats
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.events import BILLING_CONSUMER, USAGE_STREAM, UsageEvent
from tests.harness.process import OneapiProcess, free_port
from tests.harness.services import services_required
from tests.services.billing.support import (
    assert_exact,
    random_traffic,
    seed_accounts,
    wait_drained,
)

pytestmark = pytest.mark.slow

PG_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    default=Path("/usr/lib/postgresql/15/bin"),
)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster run as the postgres user; restartable at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="billing-pg-"))
        self.data = self.root / "data"
        os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must reach its data
        shutil.chown(self.root, "postgres", "postgres")

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"
        )
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "-m",
            "fast",
            action,
        )

    def restart(self) -> None:
        self._pg_ctl("restart")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or not shutil.which("runuser"):
        reason = "needs root, runuser and PostgreSQL's initdb to run a private cluster"
        if services_required():
            pytest.fail(f"{reason}; ONEAPI_TEST_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.stop()


async def publish_through_outages(
    bus: Bus, events: Sequence[UsageEvent], ids: Sequence[str]
) -> None:
    """Publish every event, retrying with the same message id while NATS is away."""
    for start in range(0, len(events), 100):
        chunk = list(zip(events[start : start + 100], ids[start : start + 100], strict=True))
        while chunk:
            results = await asyncio.gather(
                *(bus.publish_durable(event, msg_id=mid, timeout=2) for event, mid in chunk),
                return_exceptions=True,
            )
            failed = []
            for item, result in zip(chunk, results, strict=True):
                if isinstance(result, BusUnavailable):
                    failed.append(item)
                elif isinstance(result, BaseException):
                    raise result
            chunk = failed
            if chunk:
                await asyncio.sleep(0.2)


async def test_kills_and_restarts_while_draining_lose_and_duplicate_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    rng = random.Random()
    namespace = f"crash_{uuid.uuid4().hex[:8]}"
    database = Database(private_postgres.url)
    await upgrade(database)
    accounts = await seed_accounts(
        database,
        users=10,
        tokens=50,
        token_quota=lambda i: 200_000 if i % 9 == 0 else 10**9,
        unlimited=lambda i: i % 4 == 0,
    )
    events = random_traffic(accounts, 20_000, rng)
    repeats = rng.sample(events, 1000)  # re-published under other message ids

    nats = EmbeddedNats(tmp_path / "nats-data", port=free_port())
    await nats.start()
    bus = await Bus.connect(nats.url, namespace=namespace)
    await bus.ensure_streams()
    env = {
        "SQL_DSN": private_postgres.url,
        "NATS_URL": nats.url,
        "NATS_NAMESPACE": namespace,
        "BATCH_UPDATE_INTERVAL": "1",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }

    def start_billing(n: int) -> OneapiProcess:
        process = OneapiProcess(
            ["run", "--target", "billing"], data_dir=tmp_path / f"billing{n}", env=env
        )
        process.start()
        process.wait_ready()
        return process

    billing = await asyncio.to_thread(start_billing, 0)
    stream = bus.namespace.stream(USAGE_STREAM)

    async def held_by_billing() -> int:
        info = await bus.jetstream.consumer_info(stream, BILLING_CONSUMER)
        return int(info.num_ack_pending or 0)

    async def traffic() -> None:
        # About 1,000 events/s, so the drain lasts through every fault.
        for start in range(0, len(events), 250):
            wave = events[start : start + 250]
            await publish_through_outages(bus, wave, [e.request_id for e in wave])
            await asyncio.sleep(0.25)

    publishing = asyncio.create_task(traffic())
    held_at_kill = []
    try:
        for fault in ("kill", "nats", "kill", "postgres", "kill"):
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            if fault == "kill":
                # Kill while billing holds messages it has not acknowledged (mid-batch).
                for _ in range(100):
                    if (held := await held_by_billing()) > 0:
                        break
                    await asyncio.sleep(0.02)
                held_at_kill.append(held)
                billing.stop(signal.SIGKILL)
                billing = await asyncio.to_thread(start_billing, len(held_at_kill))
            elif fault == "nats":
                await nats.stop()
                await nats.start()
            else:
                await asyncio.to_thread(private_postgres.restart)
        await publishing
        await publish_through_outages(bus, repeats, [f"again-{e.request_id}" for e in repeats])
        # Messages held by a killed process come back after the ack wait (30 s).
        await wait_drained(bus, timeout=150)
        assert billing.stop() == 0, billing.output()
    finally:
        publishing.cancel()
        if billing.process is not None and billing.process.poll() is None:
            billing.process.kill()
        await bus.close()
        await nats.stop()
    assert sum(1 for held in held_at_kill if held > 0) >= 2, held_at_kill

    try:
        await assert_exact(database, accounts, events + repeats)
    finally:
        await database.dispose()
