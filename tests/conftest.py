"""Fixtures every test can use: clean databases, Redis and NATS namespaces, on real servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.harness.databases import (
    create_mysql_database,
    create_postgres_database,
    drop_mysql_database,
    drop_postgres_database,
)
from tests.harness.services import MYSQL, NATS, POSTGRES, REDIS, service_url

DATABASE_KINDS = ("sqlite", "postgres", "mysql")


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# --- servers, one lookup per test session (per xdist worker) ---------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with service_url(POSTGRES) as url:
        yield url


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    with service_url(MYSQL) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    with service_url(REDIS) as url:
        yield url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with service_url(NATS) as url:
        yield url


# --- a clean database per test -------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'one-api.db'}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    name = _unique_name("oneapi_test")
    yield create_postgres_database(postgres_server, name)
    drop_postgres_database(postgres_server, name)


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    name = _unique_name("oneapi_test")
    yield create_mysql_database(mysql_server, name)
    drop_mysql_database(mysql_server, name)


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A clean database of each kind in turn: the test runs on SQLite, PostgreSQL and MariaDB."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


# --- Redis and NATS --------------------------------------------------------------------------


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A Redis database of this xdist worker's own, empty before and after the test."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    parts = urlsplit(redis_server)
    url = f"{parts.scheme}://{parts.netloc}/{1 + int(worker or 0) % 15}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
async def nats_namespace(nats_url: str) -> AsyncIterator[str]:
    """A namespace of this test's own: its streams and KV buckets are deleted afterwards."""
    import nats

    namespace = _unique_name("t")
    yield namespace
    client = await nats.connect(nats_url)
    try:
        stream_manager = client.jetstream()
        names = await stream_manager.streams_info()
        for info in names:
            name = info.config.name or ""
            if name.startswith((f"{namespace}_", f"KV_{namespace}_")):
                await stream_manager.delete_stream(name)
    finally:
        await client.close()
