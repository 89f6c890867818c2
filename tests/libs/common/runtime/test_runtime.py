"""The process lifecycle, with small modules that record what happens to them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from libs.common.runtime import Context, Module, ModuleRegistry, ModuleSpec, Runtime
from libs.common.settings import Settings


class Journal:
    def __init__(self) -> None:
        self.events: list[str] = []


def recorder(
    journal: Journal,
    name: str,
    *,
    fail: bool = False,
    gate: asyncio.Event | None = None,
    crash_after_start: bool = False,
) -> type[Module]:
    class Recorder(Module):
        async def start(self, ctx: Context) -> None:
            journal.events.append(f"start {name}")
            if gate is not None:
                await gate.wait()
            if fail:
                raise RuntimeError(f"{name} cannot start")
            if crash_after_start:
                ctx.spawn(self._crash(), name=f"{name}-worker")

        async def _crash(self) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("worker died")

        async def stop(self) -> None:
            journal.events.append(f"stop {name}")

    Recorder.name = name
    return Recorder


def settings() -> Settings:
    return Settings(port=0, host="127.0.0.1", shutdown_grace_seconds=5)


def runtime_with(journal: Journal, **behaviour: dict[str, object]) -> Runtime:
    graph = ModuleRegistry()
    for name, deps in (("database", ()), ("bus", ()), ("relay", ("database", "bus"))):
        graph.add(
            ModuleSpec(
                name,
                recorder(journal, name, **behaviour.get(name, {})),  # type: ignore[arg-type]
                deps,
                is_target=name == "relay",
            )
        )
    return Runtime(settings(), graph, ["relay"], version="test")


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def test_modules_start_in_dependency_order_and_stop_in_reverse() -> None:
    journal = Journal()
    runtime = runtime_with(journal)
    running = asyncio.create_task(runtime.run())
    while runtime.http.port == 0 or (await get(runtime.http.port, "/readyz"))[0] != 200:
        await asyncio.sleep(0.01)
    runtime.request_stop()
    assert await running == 0
    assert journal.events == [
        "start database",
        "start bus",
        "start relay",
        "stop relay",
        "stop bus",
        "stop database",
    ]


async def test_readyz_is_503_until_every_module_runs_while_livez_answers() -> None:
    journal = Journal()
    gate = asyncio.Event()
    runtime = runtime_with(journal, bus={"gate": gate})
    running = asyncio.create_task(runtime.run())
    while "start bus" not in journal.events:
        await asyncio.sleep(0.01)
    port = runtime.http.port
    assert (await get(port, "/livez"))[0] == 200
    status, body = await get(port, "/readyz")
    assert status == 503
    assert "bus" in body
    assert "relay" in body
    gate.set()
    while (await get(port, "/readyz"))[0] != 200:
        await asyncio.sleep(0.01)
    metrics = (await get(port, "/metrics"))[1]
    assert 'oneapi_module_up{module="relay"} 1.0' in metrics
    runtime.request_stop()
    assert await running == 0


async def test_a_module_that_fails_to_start_stops_the_started_ones_and_exits_non_zero() -> None:
    journal = Journal()
    runtime = runtime_with(journal, bus={"fail": True})
    assert await runtime.run() == 1
    assert journal.events == ["start database", "start bus", "stop database"]


async def test_a_background_task_that_dies_stops_the_process_with_failure() -> None:
    journal = Journal()
    runtime = runtime_with(journal, relay={"crash_after_start": True})
    assert await asyncio.wait_for(runtime.run(), timeout=10) == 1
    assert journal.events[-3:] == ["stop relay", "stop bus", "stop database"]


async def test_port_in_use_is_a_clear_failure() -> None:
    journal = Journal()
    first = runtime_with(journal)
    await first.http.start()
    try:
        second = Runtime(
            Settings(port=first.http.port, host="127.0.0.1"), ModuleRegistry(), [], version="t"
        )
        assert await second.run() == 1
    finally:
        await first.http.stop()


async def test_in_flight_request_finishes_before_modules_stop() -> None:
    journal = Journal()
    runtime = runtime_with(journal)
    release = asyncio.Event()

    async def slow_app(scope, receive, send):  # type: ignore[no-untyped-def]
        await release.wait()
        journal.events.append("response sent")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    runtime.router.mount("/slow", slow_app)
    running = asyncio.create_task(runtime.run())
    while runtime.http.port == 0 or (await get(runtime.http.port, "/readyz"))[0] != 200:
        await asyncio.sleep(0.01)
    request = asyncio.create_task(get(runtime.http.port, "/slow"))
    await asyncio.sleep(0.1)
    runtime.request_stop()
    await asyncio.sleep(0.1)
    assert "stop relay" not in journal.events  # still draining
    release.set()
    assert await request == (200, "done")
    assert await running == 0
    assert journal.events.index("response sent") < journal.events.index("stop relay")


@pytest.mark.parametrize("path", ["/api/status", "/nothing"])
async def test_unmounted_path_is_404(path: str) -> None:
    runtime = runtime_with(Journal())
    await runtime.http.start()
    try:
        status, _ = await get(runtime.http.port, path)
        assert status == 404
    finally:
        await runtime.http.stop()
