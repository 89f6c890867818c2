"""Fixtures of the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.exported import Exported, exported_series


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Every series the code exports (the real target "all", started once per session)."""
    data_dir: Path = tmp_path_factory.mktemp("exported-metrics")
    return exported_series(data_dir)
