"""What a module gets when it starts: settings, shared resources, HTTP mounts, metrics, tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from prometheus_client import CollectorRegistry

from libs.common.runtime.http import Router
from libs.common.settings import Settings
from libs.common.tracing import OFF, Tracing

T = TypeVar("T")

logger = logging.getLogger(__name__)


class MissingResourceError(LookupError):
    """A module asked for a resource that no started module provides (a missing dependency)."""


class Context:
    """Shared by every module of one process.

    Infrastructure modules `provide` resources (the database, the bus, the cache); modules that
    depend on them `get` them by type. A resource is therefore reachable only by a module that
    declared the dependency that provides it, since modules start in dependency order.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        version: str,
        targets: frozenset[str],
        router: Router,
        metrics: CollectorRegistry,
        on_task_failure: Callable[[str, BaseException], None],
    ) -> None:
        self.settings = settings
        self.version = version
        self.targets = targets
        self.router = router
        self.metrics = metrics
        self.tracing: Tracing = OFF
        """This process's tracing (set by the runtime before modules start); `tracer` is None
        when it is off."""
        self._resources: dict[type[Any], Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_task_failure = on_task_failure

    def provide(self, resource: object, kind: type[Any] | None = None) -> None:
        self._resources[kind or type(resource)] = resource

    def get(self, kind: type[T]) -> T:
        try:
            return cast(T, self._resources[kind])
        except KeyError:
            raise MissingResourceError(
                f"no started module provides {kind.__name__}; declare the dependency"
            ) from None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run background work whose unexpected end stops the whole process."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._on_task_failure(task.get_name(), error)

    async def cancel_tasks(self) -> None:
        """Cancel background work its module did not stop itself."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
