"""What root saves through `/api/option/` is what a running relay charges, after config.changed.

The admin and a relay share one database and one NATS namespace, as in a deployment; the relay
reloads its catalogue (channels, abilities, options and the pricing built from them) when the
admin announces the change, not on its periodic resync.
"""

from __future__ import annotations

import time

import httpx

from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.events import UsageEvent
from libs.common.pricing import text_quota
from tests.fakes import FakeUpstream
from tests.services.admin.harness import admin_harness, assert_ok
from tests.services.relay.stack import SeedChannel, Stack, relay_stack

MODEL = "gpt-4o-mini"
VIP_KEY = "v" * 48


async def charge_one_request(stack: Stack) -> UsageEvent:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        response = await http.post(
            "/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer sk-{VIP_KEY}"},
        )
    assert response.status_code == 200, response.text
    [event] = await stack.usage_events(1)
    return event


async def test_a_group_ratio_saved_by_root_is_what_the_relay_charges(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    database = Database(sqlite_url)
    await upgrade(database)
    try:
        async with (
            admin_harness(database, nats_url, nats_namespace) as admin,
            FakeUpstream("openai") as fake,
            relay_stack(
                sql_dsn=sqlite_url,
                nats_url=nats_url,
                namespace=nats_namespace,
                channels=[SeedChannel("only", 1, fake.url, [MODEL], group="default,vip")],
            ) as stack,
        ):
            vip = await stack.add_user("vip", quota=10**12, group="vip")
            await stack.add_token(VIP_KEY, user_id=vip)
            assert (await charge_one_request(stack)).group_ratio == 1

            saved = await admin.client(admin.root).put(
                "/api/option/", json={"key": "GroupRatio", "value": '{"default": 1, "vip": 2.5}'}
            )
            assert_ok(saved)
            await admin.wait_for_change("option")

            deadline = time.monotonic() + 1.0
            event = await charge_one_request(stack)
            while event.group_ratio != 2.5:
                assert time.monotonic() < deadline, "the relay still charges the old group ratio"
                event = await charge_one_request(stack)
            assert event.quota == text_quota(
                event.prompt_tokens,
                event.completion_tokens,
                model_ratio=event.model_ratio,
                group_ratio=2.5,
                completion_ratio=event.completion_ratio,
            )
    finally:
        await database.dispose()
