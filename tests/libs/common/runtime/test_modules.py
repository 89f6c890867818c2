from __future__ import annotations

import pytest

from libs.common.runtime import Context, Module, ModuleGraphError, ModuleRegistry, ModuleSpec


class Nothing(Module):
    name = "nothing"

    async def start(self, ctx: Context) -> None:
        return None


def registry(*specs: tuple[str, tuple[str, ...], bool]) -> ModuleRegistry:
    result = ModuleRegistry()
    for name, deps, is_target in specs:
        result.add(ModuleSpec(name, Nothing, deps, is_target=is_target))
    return result


def test_dependencies_start_before_dependents_and_shared_ones_once() -> None:
    graph = registry(
        ("database", (), False),
        ("schema", ("database",), False),
        ("bus", (), False),
        ("relay", ("schema", "bus"), True),
        ("billing", ("schema", "bus"), True),
    )
    order = [spec.name for spec in graph.resolve(["relay", "billing"])]
    assert order == ["database", "schema", "bus", "relay", "billing"]


def test_unknown_target_names_the_known_ones() -> None:
    graph = registry(("relay", (), True), ("billing", (), True))
    with pytest.raises(
        ModuleGraphError, match=r"unknown target 'relai' \(known targets: billing, relay\)"
    ):
        graph.resolve(["relai"])


def test_internal_module_cannot_be_asked_for() -> None:
    graph = registry(("database", (), False), ("relay", ("database",), True))
    with pytest.raises(ModuleGraphError, match="internal module"):
        graph.resolve(["database"])


def test_cycle_is_reported_with_its_path() -> None:
    graph = registry(("a", ("b",), True), ("b", ("c",), False), ("c", ("a",), False))
    with pytest.raises(ModuleGraphError, match="a -> b -> c -> a"):
        graph.resolve(["a"])


def test_registering_a_name_twice_is_refused() -> None:
    graph = registry(("a", (), True))
    with pytest.raises(ModuleGraphError, match="twice"):
        graph.add(ModuleSpec("a", Nothing))
