"""Balances: read from each provider's API, stored, and unsupported types said so."""

from __future__ import annotations

import time

import pytest

from libs.common.events import BalanceReply, BalanceRequest
from tests.fakes import Billing, FakeUpstream
from tests.services.health.support import BalanceFake, eventually, health_stack
from tests.services.relay.stack import SeedChannel


async def test_balances_of_every_queryable_type_are_stored_and_the_others_say_why(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with (
        FakeUpstream("openai", billing=Billing(hard_limit_usd=120.0, used_usd=20.25)) as openai,
        FakeUpstream("anthropic") as anthropic,
        BalanceFake() as other,
    ):
        expected = {
            "openai": (1, openai.base_url, 99.75),
            "custom": (8, openai.url, 99.75),
            "deepseek": (36, f"{other.url}/deepseek", 11.25),
            "openrouter": (20, f"{other.url}/openrouter/api", 15.25),
            "siliconflow": (44, f"{other.url}/siliconflow", 42.5),
            "closeai": (4, f"{other.url}/closeai", 7.75),
            "api2gpt": (12, f"{other.url}/api2gpt", 9.0),
            "aigc2d": (13, f"{other.url}/aigc2d", 3.5),
            "openaisb": (5, f"{other.url}/openaisb", 13.37),
        }
        channels = [
            SeedChannel(name, channel_type, url, ["m"], key="good")
            for name, (channel_type, url, _) in expected.items()
        ]
        channels += [
            SeedChannel("anthropic", 14, anthropic.url, ["claude-3-5-haiku"]),
            SeedChannel("gemini", 24, "http://127.0.0.1:9", ["gemini-2.0-flash"]),
            SeedChannel("azure", 3, "http://127.0.0.1:9", ["gpt-4o"]),
            SeedChannel("revoked", 36, f"{other.url}/deepseek", ["m"], key="revoked"),
            SeedChannel("off", 36, f"{other.url}/deepseek", ["m"], key="good", status=2),
        ]
        async with health_stack(
            sql_dsn=sqlite_url, nats_url=nats_url, namespace=nats_namespace, channels=channels
        ) as health:
            started = int(time.time())
            reply = await health.bus.request(BalanceRequest(wait=True), BalanceReply, timeout=15)
            results = {result.name: result for result in reply.results}
            assert "off" not in results  # refreshing all means the enabled channels
            for name, (_, _, balance) in expected.items():
                assert results[name].success, (name, results[name].message)
                assert results[name].balance == pytest.approx(balance)
                row = await health.channel(name)
                assert row.balance == pytest.approx(balance), name
                assert row.balance_updated_time >= started
            for name in ("anthropic", "gemini", "azure"):
                assert results[name].unsupported
                assert not results[name].success
                assert "no balance" in results[name].message
                assert (await health.channel(name)).balance_updated_time == 0
            assert not results["revoked"].success
            assert not results["revoked"].unsupported
            assert "HTTP 401" in results["revoked"].message
            assert "Invalid API key" in results["revoked"].message

            # one channel on demand, whatever its status
            reply = await health.bus.request(
                BalanceRequest(channel_ids=[health.channels["off"], 4242]), BalanceReply
            )
            assert [(r.success, r.balance) for r in reply.results[:1]] == [(True, 11.25)]
            assert reply.results[1].message == "no channel #4242"
            assert (await health.channel("off")).balance == pytest.approx(11.25)
            assert health.runtime.metrics.get_sample_value(
                "oneapi_health_channel_balance_usd", {"channel": str(health.channels["openai"])}
            ) == pytest.approx(99.75)


async def test_balances_are_refreshed_on_schedule(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai", billing=Billing(hard_limit_usd=50, used_usd=5)) as openai:
        channels = [SeedChannel("openai", 1, openai.base_url, ["gpt-4o-mini"])]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            channel_update_period_seconds=0.3,
            health_lease_seconds=3,
        ) as health:

            async def stored() -> bool:
                return (await health.channel("openai")).balance == pytest.approx(45.0)

            await eventually(stored, timeout=5)
            openai.state.billing.used_usd = 15

            async def refreshed() -> bool:
                return (await health.channel("openai")).balance == pytest.approx(35.0)

            await eventually(refreshed, timeout=5)
            paths = {request.path for request in openai.requests}
            assert paths == {"/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"}
