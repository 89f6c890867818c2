"""Modules, their dependencies, and the order a process starts them in.

A *module* is one component of a process (the database, the bus, the relay, ...). It names the
modules it depends on; the runtime starts dependencies first and stops in reverse order. A
*target* is a module an operator may ask for by name (`oneapi run --target relay,billing`);
`all` is the target that depends on every service.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from libs.common.runtime.context import Context


class ModuleGraphError(Exception):
    """The requested targets cannot be resolved: an unknown name or a dependency cycle."""


class Module(ABC):
    """One component of a process, started after its dependencies and stopped before them.

    `start` returns once the module serves; long-running work goes to `ctx.spawn`, whose
    failure stops the process. `stop` releases what `start` acquired and must not raise.
    """

    name: ClassVar[str]

    @abstractmethod
    async def start(self, ctx: Context) -> None: ...

    async def stop(self) -> None:  # noqa: B027 - most modules hold nothing to release
        """Release what `start` acquired; the default has nothing to do."""


@dataclass(frozen=True)
class ModuleSpec:
    """How to build a module and what it needs first."""

    name: str
    factory: Callable[[], Module] | None
    dependencies: tuple[str, ...] = ()
    is_target: bool = False
    description: str = ""


@dataclass
class ModuleRegistry:
    """Every module a process can run, by name."""

    specs: dict[str, ModuleSpec] = field(default_factory=dict)

    def add(self, spec: ModuleSpec) -> None:
        if spec.name in self.specs:
            raise ModuleGraphError(f"module {spec.name!r} is registered twice")
        self.specs[spec.name] = spec

    def targets(self) -> list[ModuleSpec]:
        return [spec for spec in self.specs.values() if spec.is_target]

    def resolve(self, targets: Iterable[str]) -> list[ModuleSpec]:
        """The modules needed by `targets`, each after all of its dependencies."""
        ordered: list[ModuleSpec] = []
        state: dict[str, str] = {}  # name -> "visiting" | "done"

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = " -> ".join((*path[path.index(name) :], name))
                raise ModuleGraphError(f"dependency cycle: {cycle}")
            spec = self.specs.get(name)
            if spec is None:
                known = ", ".join(sorted(s.name for s in self.targets()))
                raise ModuleGraphError(f"unknown target {name!r} (known targets: {known})")
            state[name] = "visiting"
            for dependency in spec.dependencies:
                visit(dependency, (*path, name))
            state[name] = "done"
            ordered.append(spec)

        requested = list(targets)
        for name in requested:
            spec = self.specs.get(name)
            if spec is not None and not spec.is_target:
                raise ModuleGraphError(f"{name!r} is an internal module, not a target")
            visit(name, ())
        return ordered
