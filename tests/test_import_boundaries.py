"""The walls of ARCHITECTURE.md: libs never import services; services never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("libs"), ids=lambda p: str(p.relative_to(ROOT)))
def test_libs_do_not_import_services(path: Path) -> None:
    offending = {
        name for name in imported_modules(path) if name.split(".")[0] in ("services", "oneapi")
    }
    assert offending == set()


@pytest.mark.parametrize("path", sources("services"), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_do_not_import_each_other(path: Path) -> None:
    own = path.relative_to(ROOT / "services").parts[0]
    offending = {
        name
        for name in imported_modules(path)
        if name.startswith("services.") and name.split(".")[1] != own
    }
    assert offending == set()


# Calls that build settings, connections or metrics: they belong in functions, not at import.
SIDE_EFFECTS = (
    "load_settings",
    "Settings",
    "create_async_engine",
    "create_engine",
    "Redis",
    "from_url",
    "connect",
    "ClientSession",
    "Counter",
    "Gauge",
    "Histogram",
    "Summary",
    "basicConfig",
)


def module_level_calls(path: Path) -> list[str]:
    calls = []
    for statement in ast.parse(path.read_text()).body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in SIDE_EFFECTS:
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}()")
    return calls


def test_no_module_level_side_effects() -> None:
    offenders = [
        call
        for folder in ("libs", "services", "oneapi")
        for path in sources(folder)
        for call in module_level_calls(path)
    ]
    assert offenders == []
