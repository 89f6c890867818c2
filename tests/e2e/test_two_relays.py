"""Two relay processes sharing PostgreSQL, Redis and NATS spend a token's quota only once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Ability, Channel, Option, Token, User
from libs.common.settings import Settings
from tests.fakes import FakeUpstream
from tests.harness.process import OneapiProcess

pytestmark = pytest.mark.slow

MODEL = "metered-model"
QUOTA = 20
# With ModelRatio = CompletionRatio = 1 and PreConsumedQuota = 0, one request for "hi" with
# max_tokens=1 is estimated at 9 (8 prompt tokens counted locally + 1) and costs 2 (the fake
# counts 1 prompt word and answers 1 word). A request is admitted only while the shared
# available balance covers its estimate, and estimates cover costs, so whatever the
# interleaving of the two relays: admitted <= (QUOTA - ESTIMATE) // COST + 1. Relays that did
# not share the ledger would admit that many each.
ESTIMATE, COST = 9, 2
BOUND = (QUOTA - ESTIMATE) // COST + 1


async def seed(database: Database, upstream: str, key: str) -> None:
    await upgrade(database)
    async with database.session() as session:
        owner = User(username="owner", password="x", quota=10**12)
        session.add(owner)
        channel = Channel(name="fake", type=1, key="sk-up", base_url=upstream, models=MODEL)
        session.add(channel)
        await session.flush()
        session.add(Ability(group="default", model=MODEL, channel_id=channel.id, enabled=True))
        session.add(
            Token(
                user_id=owner.id, key=key, name="metered", remain_quota=QUOTA, unlimited_quota=False
            )
        )
        session.add(Option(key="ModelRatio", value=f'{{"{MODEL}": 1}}'))
        session.add(Option(key="CompletionRatio", value=f'{{"{MODEL}": 1}}'))
        session.add(Option(key="PreConsumedQuota", value="0"))


async def test_two_relays_admit_within_the_shared_quota(
    postgres_url: str, redis_url: str, nats_url: str, nats_namespace: str, tmp_path: Path
) -> None:
    key = "m" * 48
    env = {
        "SQL_DSN": postgres_url,
        "REDIS_CONN_STRING": redis_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": nats_namespace,
    }
    async with FakeUpstream("openai") as fake:
        database = Database.from_settings(Settings(sql_dsn=postgres_url))
        await seed(database, fake.url, key)
        await database.dispose()
        relays = [
            OneapiProcess(["run", "--target", "relay"], data_dir=tmp_path / f"r{i}", env=env)
            for i in range(2)
        ]
        for relay in relays:
            relay.start()
        try:
            for relay in relays:
                await asyncio.to_thread(relay.wait_ready)
            body = {
                "model": MODEL,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "hi"}],
            }
            async with httpx.AsyncClient(timeout=30) as http:

                async def client(relay: OneapiProcess) -> list[httpx.Response]:
                    # One after another: each relay alone would admit QUOTA's worth by itself.
                    return [
                        await http.post(
                            f"{relay.url}/v1/chat/completions",
                            json=body,
                            headers={"Authorization": f"Bearer sk-{key}"},
                        )
                        for _ in range(12)
                    ]

                waves = await asyncio.gather(*[client(relay) for relay in relays])
            answers = [answer for wave in waves for answer in wave]
            statuses = [answer.status_code for answer in answers]
            admitted = statuses.count(200)
            refused = [a.json()["error"]["code"] for a in answers if a.status_code != 200]
            assert set(refused) <= {"insufficient_token_quota"}, refused
            assert 1 <= admitted <= BOUND, statuses
            assert admitted * COST <= QUOTA
        finally:
            for relay in relays:
                relay.stop()
                relay.__exit__(None, None, None)
