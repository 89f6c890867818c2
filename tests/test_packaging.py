"""The pinned locks hold everything pyproject.toml declares: a fresh machine has nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {
        normalise(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])
        for requirement in requirements
    }


def pinned(lock: str) -> set[str]:
    lines = (ROOT / "requirements" / lock).read_text().splitlines()
    return {normalise(line.split("==")[0]) for line in lines if "==" in line}


@pytest.mark.parametrize(("lock", "extras"), [("run.lock", [None]), ("dev.lock", [None, "dev"])])
def test_every_declared_dependency_is_pinned(lock: str, extras: list[str | None]) -> None:
    missing = set().union(*(declared(extra) for extra in extras)) - pinned(lock)
    assert missing == set(), f"run `make lock`: {sorted(missing)} are not in requirements/{lock}"
