"""`sealed_admin`: the admin fixture with CRYPTO_SECRET set, on each backend in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.common.db import Database
from tests.services.admin.channels.support import SECRET
from tests.services.admin.harness import AdminHarness, admin_harness


@pytest.fixture
async def sealed_admin(
    admin_database_url: str, nats_url: str, nats_namespace: str
) -> AsyncIterator[AdminHarness]:
    database = Database(admin_database_url)
    try:
        async with admin_harness(
            database, nats_url, nats_namespace, crypto_secret=SECRET
        ) as harness:
            yield harness
    finally:
        await database.dispose()
