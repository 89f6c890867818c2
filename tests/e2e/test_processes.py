"""`oneapi` as operators run it: whole processes, real services, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.process import OneapiProcess, alive, children_of, wait_until

pytestmark = pytest.mark.slow


def nats_server_children(pid: int) -> list[int]:
    return [
        child
        for child in children_of(pid)
        if "nats-server" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
    ]


def test_all_on_embedded_defaults_serves_status_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    with OneapiProcess([], data_dir=tmp_path / "data") as oneapi:
        oneapi.wait_ready()
        status = oneapi.get("/api/status").json()
        assert status["success"] is True
        assert status["data"]["system_name"] == "One API"
        assert oneapi.get("/api/status").text.count('"quota_per_unit":500000,') == 1
        assert status["data"]["version"]
        assert (tmp_path / "data" / "one-api.db").exists()
        assert oneapi.status_of("/livez") == 200
        assert "oneapi_module_up" in oneapi.get("/metrics").text
        nats = nats_server_children(oneapi.pid)
        assert len(nats) == 1, oneapi.output()
        assert oneapi.stop(signal.SIGINT) == 0, oneapi.output()
        wait_until(lambda: not alive(nats[0]), 10, "the embedded nats-server to exit")


def test_sigkilled_process_takes_its_nats_server_with_it(tmp_path: Path) -> None:
    with OneapiProcess([], data_dir=tmp_path / "data") as oneapi:
        oneapi.wait_ready()
        nats = nats_server_children(oneapi.pid)
        assert len(nats) == 1
        oneapi.stop(signal.SIGKILL)
        wait_until(lambda: not alive(nats[0]), 10, "the orphaned nats-server to exit")


@pytest.fixture
def shared_services(
    postgres_url: str, nats_url: str, nats_namespace: str, redis_url: str
) -> dict[str, str]:
    """The split deployment's environment: PostgreSQL, NATS and Redis of this machine."""
    return {
        "SQL_DSN": postgres_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": nats_namespace,
        "REDIS_CONN_STRING": redis_url,
    }


def migrate(env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oneapi", "migrate"],
        env={**_base_env(), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("ONEAPI_TEST")}


@pytest.mark.parametrize("target", ["admin", "relay", "billing", "health"])
def test_each_target_starts_alone_on_real_services_and_stops_on_sigterm(
    target: str, shared_services: dict[str, str], tmp_path: Path
) -> None:
    if target != "admin":
        migrate(shared_services, tmp_path)
    with OneapiProcess(["run", "--target", target], data_dir=tmp_path, env=shared_services) as p:
        p.wait_ready()
        if target == "admin":
            assert p.get("/api/status").json()["success"] is True
        else:
            assert p.status_of("/api/status") == 404
        if target == "relay":
            body = p.get("/v1/nothing").json()
            assert body["error"]["message"] == "Invalid URL (GET /v1/nothing)"
        assert nats_server_children(p.pid) == []  # NATS_URL set: nothing embedded
        assert p.stop(signal.SIGTERM) == 0, p.output()
    assert not (tmp_path / "one-api.db").exists()  # SQL_DSN set: SQLite untouched


def test_a_target_without_schema_waits_until_admin_migrates(
    shared_services: dict[str, str], tmp_path: Path
) -> None:
    with OneapiProcess(
        ["run", "--target", "billing"], data_dir=tmp_path / "billing", env=shared_services
    ) as billing:
        wait_until(lambda: billing.status_of("/livez") == 200, 30, "billing to answer /livez")
        assert billing.status_of("/readyz") == 503
        with OneapiProcess(
            ["run", "--target", "admin"], data_dir=tmp_path / "admin", env=shared_services
        ) as admin:
            admin.wait_ready()
            billing.wait_ready()
            assert admin.stop() == 0
        assert billing.stop() == 0


def test_unreachable_database_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = {"SQL_DSN": "postgres://nobody:hunter2@127.0.0.1:1/none", "TARGET": "admin"}
    oneapi = OneapiProcess([], data_dir=tmp_path, env={**env, "DATABASE_WAIT_SECONDS": "1"})
    with oneapi:
        assert oneapi.process is not None
        code = oneapi.process.wait(120)
        assert code == 1
        output = oneapi.output()
        assert "module database failed to start" in output
        assert "hunter2" not in output
