"""schemathesis against the served `/api/openapi.json`: no 5xx, no answer that breaks the schema.

A real `oneapi` process (targets admin and health, SQLite, embedded NATS) is driven with
generated requests, authenticated as root so every route is reached past its permission check.
Every operation is tried and every failure reported together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.harness.process import OneapiProcess

ROOT_ACCESS_TOKEN = "contract-root-access-token-0001"
EXAMPLES_PER_OPERATION = 25
pytestmark = [pytest.mark.xdist_group("admin_contract"), pytest.mark.slow]


@pytest.fixture(scope="module")
def admin_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneapiProcess]:
    data_dir: Path = tmp_path_factory.mktemp("contract")
    env = {
        "INITIAL_ROOT_ACCESS_TOKEN": ROOT_ACCESS_TOKEN,
        "GLOBAL_API_RATE_LIMIT": "0",
        "SESSION_SECRET": "contract",
    }
    with OneapiProcess(["run", "--target", "admin,health"], data_dir=data_dir, env=env) as p:
        p.wait_ready()
        yield p


@pytest.fixture(scope="module")
def api_schema(admin_process: OneapiProcess) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{admin_process.url}/api/openapi.json")


def test_every_operation_answers_within_its_schema(
    api_schema: schemathesis.schemas.BaseSchema, admin_process: OneapiProcess
) -> None:
    failures: list[str] = []
    operations = 0
    # `GET /api/user/token` replaces root's access token, which the rest of the run needs.
    for result in sorted(api_schema.get_all_operations(), key=_replaces_root_token_last):
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=admin_process.url,
                headers={"Authorization": ROOT_ACCESS_TOKEN},
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            check()
        except Exception as exc:  # every operation is tried; the failures are listed together
            failures.append(f"{operation.label}: {exc}")
    assert operations > 0
    assert not failures, "\n\n".join(failures)


def _replaces_root_token_last(result: Any) -> bool:
    operation = result.ok()
    return bool(operation.method.upper() == "GET" and operation.path == "/api/user/token")
