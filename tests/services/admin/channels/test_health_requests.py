"""Channel tests and balances: the admin asks a real health service, which asks a fake upstream."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import Billing, FakeUpstream, error
from tests.services.admin.channels.support import channel_body, channel_row, health_service
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused
from tests.services.health.support import eventually


async def create(admin: AdminHarness, **fields: Any) -> dict[str, Any]:
    [channel] = assert_ok(
        await admin.client(admin.root).post("/api/channel/", json=channel_body(**fields))
    )
    assert isinstance(channel, dict)
    return channel


async def test_testing_a_channel_waits_for_health_and_answers_one_apis_shape(
    admin: AdminHarness, admin_database_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai", keys=["sk-upstream-key-0001"]) as fake:
        channel = await create(admin, base_url=fake.url, models="gpt-4o-mini,gpt-4o")
        client = admin.client(admin.root)
        async with health_service(admin_database_url, nats_url, nats_namespace):
            response = await client.get(
                f"/api/channel/test/{channel['id']}", params={"model": "gpt-4o"}
            )
            answer = response.json()
            assert answer["success"] is True, answer
            assert answer["model"] == "gpt-4o"
            assert 0 < answer["time"] < 10
            assert fake.last_request.json["model"] == "gpt-4o"
            row = await channel_row(admin.database, channel["id"])
            assert row is not None
            assert row.test_time > 0
            assert row.response_time == round(answer["time"] * 1000)

            fake.push(error("server_error", message="upstream is down"))
            failed = (await client.get(f"/api/channel/test/{channel['id']}")).json()
            assert failed["success"] is False
            assert "upstream is down" in failed["message"]
            assert failed["model"] == "gpt-4o-mini"  # the channel's first model

            missing = await client.get(f"/api/channel/test/{channel['id'] + 1}")
            assert_refused(missing, message="渠道不存在")


async def test_without_a_health_service_tests_and_balances_are_refused_clearly(
    admin: AdminHarness,
) -> None:
    channel = await create(admin)
    client = admin.client(admin.root)
    for path in (
        f"/api/channel/test/{channel['id']}",
        "/api/channel/test",
        f"/api/channel/update_balance/{channel['id']}",
        "/api/channel/update_balance",
    ):
        assert_refused(await client.get(path), message="health")


async def test_a_balance_is_refreshed_through_health(
    admin: AdminHarness, admin_database_url: str, nats_url: str, nats_namespace: str
) -> None:
    billing = Billing(hard_limit_usd=100.0, used_usd=12.5)
    async with FakeUpstream("openai", billing=billing) as fake:
        channel = await create(admin, base_url=fake.url)
        claude = await create(admin, type=14, name="claude", models="claude-3-5-haiku")
        client = admin.client(admin.root)
        async with health_service(admin_database_url, nats_url, nats_namespace):
            answer = (await client.get(f"/api/channel/update_balance/{channel['id']}")).json()
            assert answer == {"success": True, "message": "", "balance": 87.5}
            row = await channel_row(admin.database, channel["id"])
            assert row is not None
            assert row.balance == pytest.approx(87.5)
            assert row.balance_updated_time > 0
            listed = assert_ok(await client.get(f"/api/channel/{channel['id']}"))
            assert listed["balance"] == pytest.approx(87.5)

            unsupported = (await client.get(f"/api/channel/update_balance/{claude['id']}")).json()
            assert unsupported["success"] is False
            assert "不支持" in unsupported["message"]


async def test_testing_and_refreshing_every_channel_start_in_the_background(
    admin: AdminHarness, admin_database_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai", billing=Billing(hard_limit_usd=10, used_usd=1)) as fake:
        on = await create(admin, base_url=fake.url, name="on")
        off = await create(admin, base_url=fake.url, name="off", status=3)
        client = admin.client(admin.root)
        async with health_service(admin_database_url, nats_url, nats_namespace):
            assert_ok(await client.get("/api/channel/test", params={"scope": "disabled"}))
            # only the automatically disabled channel is tested
            await eventually(lambda: _tested(admin, off["id"]), what="the disabled channel tested")
            assert not await _tested(admin, on["id"])

            async def started() -> bool:
                # refused while the round of the disabled channel is still finishing
                answer = (await client.get("/api/channel/test")).json()
                assert answer["success"] or "already running" in answer["message"], answer
                return bool(answer["success"])

            await eventually(started, what="a test of every channel starting")
            await eventually(lambda: _tested(admin, on["id"]), what="every channel tested")

            assert_ok(await client.get("/api/channel/update_balance"))

            async def refreshed() -> bool:
                row = await channel_row(admin.database, on["id"])
                return row is not None and row.balance == pytest.approx(9.0)

            await eventually(refreshed, what="the balance refreshed")
            assert_refused(
                await client.get("/api/channel/test", params={"scope": "some"}),
                message="scope",
            )


async def _tested(admin: AdminHarness, channel_id: int) -> bool:
    row = await channel_row(admin.database, channel_id)
    return row is not None and row.test_time > 0
