"""Real PostgreSQL, MariaDB/MySQL, Redis and NATS for tests.

Each service is looked for on its default loopback port (override with ONEAPI_TEST_<NAME>_URL).
When it does not answer and a Docker engine does, a throwaway container is started instead.
When neither works the test is skipped, unless ONEAPI_TEST_REQUIRE_SERVICES=1 (set by .ci/run):
then the test fails, so CI can never pass by skipping the real-service tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class Service:
    name: str
    env_var: str
    default_url: str
    image: str


POSTGRES = Service(
    "PostgreSQL",
    "ONEAPI_TEST_POSTGRES_URL",
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgres:16-alpine",
)
MYSQL = Service(
    "MariaDB/MySQL", "ONEAPI_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test", "mariadb:11"
)
REDIS = Service("Redis", "ONEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0", "redis:7-alpine")
NATS = Service("NATS", "ONEAPI_TEST_NATS_URL", "nats://127.0.0.1:4222", "nats:2-alpine")


def services_required() -> bool:
    return os.environ.get("ONEAPI_TEST_REQUIRE_SERVICES") == "1"


def _answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def _start_container(service: Service) -> tuple[str, Callable[[], None]]:
    """Start `service` in Docker; returns its URL and the function that removes it."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer(service.image)
    if service is POSTGRES:
        container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust").with_exposed_ports(5432)
        ready, port, scheme, path = "ready to accept connections", 5432, "postgresql", "/postgres"
    elif service is MYSQL:
        container.with_env("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
        container.with_env("MARIADB_DATABASE", "test").with_exposed_ports(3306)
        ready, port, scheme, path = "ready for connections", 3306, "mysql", "/test"
    elif service is REDIS:
        container.with_exposed_ports(6379)
        ready, port, scheme, path = "Ready to accept connections", 6379, "redis", "/0"
    else:
        container.with_command("-js").with_exposed_ports(4222)
        ready, port, scheme, path = "Server is ready", 4222, "nats", ""
    container.start()
    wait_for_logs(container, ready, timeout=60)
    host = container.get_container_host_ip()
    user = {"postgresql": "postgres@", "mysql": "root@"}.get(scheme, "")
    url = f"{scheme}://{user}{host}:{container.get_exposed_port(port)}{path}"
    return url, container.stop


@contextlib.contextmanager
def service_url(service: Service) -> Iterator[str]:
    """The URL of a running `service`, for the length of the block (one test session)."""
    url = os.environ.get(service.env_var, service.default_url)
    if _answers(url):
        yield url
        return
    if _docker_answers():
        url, remove = _start_container(service)
        try:
            yield url
        finally:
            remove()
        return
    message = (
        f"{service.name} does not answer at {url} (set {service.env_var}) "
        "and no Docker engine answers"
    )
    if services_required():
        pytest.fail(f"{message}; ONEAPI_TEST_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)
