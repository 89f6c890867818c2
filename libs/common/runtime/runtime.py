"""The lifecycle of one process: start modules in dependency order, serve, drain, stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, Info, PlatformCollector, ProcessCollector

from libs.common.runtime.context import Context
from libs.common.runtime.http import HttpServer, Router
from libs.common.runtime.modules import Module, ModuleRegistry, ModuleSpec
from libs.common.settings import Settings
from libs.common.tracing import Tracing, default_service_name, start_tracing

logger = logging.getLogger(__name__)


class ModuleFailedError(Exception):
    """A module failed to start, or its background work ended unexpectedly."""


@dataclass
class _Running:
    spec: ModuleSpec
    module: Module


class Runtime:
    """Runs the modules that the requested targets need, in one process.

    Start: the HTTP server first (so `/livez` answers during a long migration), then each module
    after its dependencies. `/readyz` answers 200 once every module runs. On SIGTERM or SIGINT:
    `/readyz` turns 503, the HTTP server stops accepting and drains in-flight requests, then the
    modules stop in reverse order. A second signal skips the drain.
    """

    def __init__(
        self,
        settings: Settings,
        registry: ModuleRegistry,
        targets: Iterable[str],
        *,
        version: str,
        tracing: Tracing | None = None,
    ) -> None:
        """`tracing`, when given, is used as is and left running at stop (tests share one);
        otherwise the runtime starts it from the ``OTEL_*`` variables and stops it."""
        self.settings = settings
        self.version = version
        self._tracing = tracing
        self._owns_tracing = False
        self.targets = tuple(targets)
        self._plan = registry.resolve(self.targets)
        self._running: list[_Running] = []
        self._ready = False
        self._stopping = asyncio.Event()
        self._failure: ModuleFailedError | None = None
        self.metrics = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.metrics)
        PlatformCollector(registry=self.metrics)
        Info("oneapi_build", "Version of this process", registry=self.metrics).info(
            {"version": version, "targets": ",".join(self.targets)}
        )
        self._module_up = Gauge(
            "oneapi_module_up", "1 when the module runs", ["module"], registry=self.metrics
        )
        self.router = Router(self.metrics, self._readiness)
        self.http = HttpServer(
            self.router,
            host=settings.host,
            port=settings.port,
            grace_seconds=settings.shutdown_grace_seconds,
        )
        self.context = Context(
            settings,
            version=version,
            targets=frozenset(self.targets) | {spec.name for spec in self._plan if spec.is_target},
            router=self.router,
            metrics=self.metrics,
            on_task_failure=self._task_failed,
        )

    @property
    def plan(self) -> list[str]:
        """Module names in start order."""
        return [spec.name for spec in self._plan]

    def _readiness(self) -> tuple[bool, list[str]]:
        running = {entry.spec.name for entry in self._running}
        waiting = [name for name in self.plan if name not in running]
        if self._stopping.is_set():
            waiting = waiting or ["shutting down"]
        return self._ready and not self._stopping.is_set(), waiting

    def _task_failed(self, name: str, error: BaseException) -> None:
        logger.error("background task %s failed: %r", name, error, exc_info=error)
        if self._failure is None:
            self._failure = ModuleFailedError(f"background task {name} failed: {error!r}")
        self._stopping.set()

    def request_stop(self) -> None:
        if self._stopping.is_set():
            logger.warning("second stop request: not waiting for in-flight requests")
            self.http.force_stop()
        self._stopping.set()

    async def start(self) -> None:
        """Start the HTTP server and every module; raises ModuleFailedError on failure."""
        if self._tracing is None:
            self._tracing = start_tracing(
                service_name=default_service_name(self.targets), version=self.version
            )
            self._owns_tracing = True
        self.context.tracing = self._tracing
        await self.http.start()
        for spec in self._plan:
            if self._stopping.is_set():
                break
            if spec.factory is None:
                self._running.append(_Running(spec, _Marker()))
                continue
            module = spec.factory()
            began = time.monotonic()
            logger.info("starting module %s", spec.name)
            try:
                await module.start(self.context)
            except Exception as exc:
                logger.exception("module %s failed to start", spec.name)
                raise ModuleFailedError(f"module {spec.name} failed to start: {exc}") from exc
            self._running.append(_Running(spec, module))
            self._module_up.labels(spec.name).set(1)
            logger.info("module %s started in %.2fs", spec.name, time.monotonic() - began)
        self._ready = True
        logger.info("ready: %s", ", ".join(self.targets))

    async def stop(self) -> None:
        """Drain HTTP, then stop the running modules in reverse order."""
        self._stopping.set()
        await self.http.stop()
        for entry in reversed(self._running):
            logger.info("stopping module %s", entry.spec.name)
            try:
                await entry.module.stop()
            except Exception:
                logger.exception("module %s failed to stop cleanly", entry.spec.name)
            self._module_up.labels(entry.spec.name).set(0)
        self._running.clear()
        await self.context.cancel_tasks()
        if self._owns_tracing and self._tracing is not None:
            # Flushes the spans still buffered (bounded by the exporter's timeout).
            await asyncio.to_thread(self._tracing.shutdown)
            self._tracing = None
            self._owns_tracing = False

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT or a failure; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            try:
                await self.start()
            except (ModuleFailedError, OSError) as exc:
                self._failure = self._failure or ModuleFailedError(str(exc))
            if self._failure is None:
                await self._stopping.wait()
            logger.info("shutting down")
            await self.stop()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        if self._failure is not None:
            logger.error("%s", self._failure)
            return 1
        logger.info("stopped")
        return 0


class _Marker(Module):
    """Stands for a target with no code of its own, such as `all`."""

    name = "marker"

    async def start(self, ctx: Context) -> None:
        return None
