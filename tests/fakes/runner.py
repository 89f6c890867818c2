"""Running a fake provider: in the test's event loop, in a background thread, or as a process."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.core import (
    Billing,
    FakeStartError,
    FakeState,
    Outcome,
    RecordedRequest,
    Rule,
)

PROVIDERS = ("openai", "azure", "anthropic", "gemini", "ollama")
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "FAKE_UPSTREAM_READY "


def create_app(provider: str, state: FakeState) -> web.Application:
    """The aiohttp application of ``provider`` serving ``state``."""
    if provider not in PROVIDERS:
        raise FakeStartError(f"unknown fake provider {provider!r}; known: {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"tests.fakes.{provider}")
    app: web.Application = module.create_app(state)
    return app


class FakeUpstream:
    """A fake provider on 127.0.0.1 and a free port.

    ``async with FakeUpstream("openai") as fake`` runs it in the current event loop;
    ``with FakeUpstream("openai") as fake`` runs it in a background thread with its own loop
    (for sync SDK clients). Script it with ``push``/``add_rule``; read ``requests``.
    """

    def __init__(
        self,
        provider: str = "openai",
        *,
        keys: Iterable[str] | None = None,
        require_key: bool | None = None,
        models: Iterable[str] | None = None,
        deployments: Mapping[str, str] | None = None,
        billing: Billing | None = None,
        fast: bool = False,
        record: bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.provider = provider
        self.state = FakeState(
            provider,
            keys=keys,
            require_key=(provider != "ollama") if require_key is None else require_key,
            models=models,
            deployments=deployments,
            billing=billing,
            fast=fast,
            record=record,
        )
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8123`` (Anthropic, Gemini, Ollama, Azure SDKs)."""
        if not self.port:
            raise FakeStartError("the fake is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL the provider's SDK expects: ``/v1`` appended for OpenAI."""
        return self.url + "/v1" if self.provider == "openai" else self.url

    # --- scripting and observation -----------------------------------------------------------
    def push(self, *outcomes: Outcome, **match: Any) -> None:
        """Queue one-shot outcomes for the next matching requests, in order."""
        self.state.push(*outcomes, **match)

    def add_rule(
        self,
        outcome: Outcome,
        *,
        model: str | None = None,
        key: str | None = None,
        path: str | None = None,
        stream: bool | None = None,
        times: int | None = None,
    ) -> Rule:
        """Apply ``outcome`` to matching requests (``times`` times, default always)."""
        return self.state.add_rule(
            outcome, model=model, key=key, path=path, stream=stream, times=times
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.state.requests)

    @property
    def last_request(self) -> RecordedRequest:
        if not self.state.requests:
            raise AssertionError("the fake has received no request")
        return self.state.requests[-1]

    def reset(self) -> None:
        """Forget requests and rules."""
        self.state.reset()

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until ``count`` requests arrived (deadline ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.state.request_count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.state.request_count} of {count} requests arrived")
            await asyncio.sleep(0.005)
        return self.requests

    def wait_for_requests_sync(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """``wait_for_requests`` for sync tests."""
        deadline = time.monotonic() + timeout
        while self.state.request_count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.state.request_count} of {count} requests arrived")
            time.sleep(0.005)
        return self.requests

    # --- async lifecycle ---------------------------------------------------------------------
    async def start(self) -> FakeUpstream:
        app = create_app(self.provider, self.state)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- thread lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FakeUpstream:
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # surfaced to the starting thread below
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=serve, name=f"fake-{self.provider}", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise FakeStartError(f"fake {self.provider} did not start within 10 s")
        if failure:
            raise FakeStartError(f"fake {self.provider} failed to start: {failure[0]}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None


class FakeProcess:
    """A fake provider in its own process (``python -m tests.fakes``), controlled over HTTP.

    ``with FakeProcess("openai") as fake: fake.base_url`` — script it with ``push``/``add_rule``
    (sent to ``/__fake__/rules``) and read ``requests()`` (JSON dicts).
    """

    def __init__(
        self,
        provider: str = "openai",
        *,
        keys: Iterable[str] | None = None,
        fast: bool = False,
        port: int = 0,
        extra_args: Iterable[str] = (),
        start_timeout: float = 20.0,
    ) -> None:
        self.provider = provider
        self.args = [
            sys.executable,
            "-m",
            "tests.fakes",
            "--provider",
            provider,
            "--port",
            str(port),
        ]
        if keys is not None:
            self.args += ["--keys", ",".join(keys)]
        if fast:
            self.args.append("--fast")
        self.args += list(extra_args)
        self.start_timeout = start_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1" if self.provider == "openai" else self.url

    def __enter__(self) -> FakeProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        process = subprocess.Popen(
            self.args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env
        )
        self._process = process
        assert process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.__exit__(None, None, None)
                    raise FakeStartError(f"fake {self.provider} process did not get ready")
                line = process.stdout.readline()
                if not line:
                    self.__exit__(None, None, None)
                    raise FakeStartError(
                        f"fake {self.provider} process exited (code {process.poll()})"
                    )
                if line.startswith(READY_PREFIX):
                    self.url = line[len(READY_PREFIX) :].strip()
                    return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 (the fake, on loopback)
            self.url + "/__fake__/" + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def add_rule(self, outcome: Outcome, **match: Any) -> None:
        self._call("POST", "rules", {"outcome": outcome.to_dict(), **match})

    def push(self, *outcomes: Outcome, **match: Any) -> None:
        for outcome in outcomes:
            self.add_rule(outcome, times=1, **match)

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def reset(self) -> None:
        self._call("DELETE", "requests")

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result
