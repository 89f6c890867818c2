"""Channel tests through the providers: recorded, logged, slow channels out, recovered ones in."""

from __future__ import annotations

import pytest

from libs.common.db.models import ChannelStatus, LogType
from libs.common.events import ChannelTestReply, ChannelTestRequest
from tests.fakes import FakeUpstream, error, slow
from tests.services.health.support import eventually, health_stack
from tests.services.relay.stack import SeedChannel

ON = {
    "AutomaticDisableChannelEnabled": "true",
    "AutomaticEnableChannelEnabled": "true",
    "ChannelDisableThreshold": "0.5",
}


async def test_scheduled_tests_disable_a_slow_channel_and_bring_it_back_when_it_recovers(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai") as fake:
        fake.add_rule(slow(0.9))
        channels = [
            SeedChannel("slow", 1, fake.url, ["text-embedding-3-small", "gpt-4o-mini"]),
            SeedChannel("manual", 1, fake.url, ["gpt-4o-mini"], status=2),
        ]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            options=ON,
            channel_test_period_seconds=0.5,
            health_lease_seconds=3,
        ) as health:
            await health.wait_status("slow", ChannelStatus.AUTO_DISABLED)
            row = await health.channel("slow")
            assert row.response_time >= 900
            assert row.test_time > 0
            assert await health.abilities_enabled("slow") == {False}
            await eventually(lambda: health.channels["slow"] in health.changed_channels())
            # the test asked for the first chat model, with the test prompt and few tokens
            request = fake.requests[0]
            assert request.path == "/v1/chat/completions"
            assert request.json["model"] == "gpt-4o-mini"
            assert request.json["messages"][0]["content"] == health.settings.test_prompt
            assert request.json["max_tokens"] <= 16
            assert not request.json.get("stream")

            fake.state.clear_rules()  # the upstream recovers
            await health.wait_status("slow", ChannelStatus.ENABLED)
            assert await health.abilities_enabled("slow") == {True}
            assert (await health.channel("slow")).response_time < 500

            tests = await health.logs(LogType.TEST)
            assert {log.channel_id for log in tests} == {health.channels["slow"]}
            assert any("测试成功" in log.content for log in tests)
            assert all(log.model_name == "gpt-4o-mini" for log in tests)
            system = [log.content for log in await health.logs(LogType.SYSTEM)]
            assert any("已被禁用" in text and "超过阈值" in text for text in system)
            assert any("已被启用" in text for text in system)
            # a manually disabled channel is neither tested on schedule nor ever enabled
            assert await health.status("manual") == ChannelStatus.MANUALLY_DISABLED
            assert (await health.channel("manual")).test_time == 0


async def test_tests_on_demand_report_each_channel_and_never_touch_a_manual_one(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai", keys=["good"]) as fake:
        channels = [
            SeedChannel("ok", 1, fake.url, ["gpt-4o-mini"], key="good"),
            SeedChannel("revoked", 1, fake.url, ["gpt-4o-mini"], key="revoked"),
            SeedChannel("broken", 1, fake.url, ["gpt-4o-mini"], key="good", status=3),
            SeedChannel("manual", 1, fake.url, ["gpt-4o-mini"], key="good", status=2),
        ]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            options=ON,
        ) as health:
            ids = health.channels
            reply = await health.bus.request(
                ChannelTestRequest(channel_ids=[ids["ok"], ids["revoked"], ids["manual"], 999]),
                ChannelTestReply,
                timeout=10,
            )
            results = {result.channel_id: result for result in reply.results}
            assert results[ids["ok"]].success
            assert results[ids["ok"]].status == ChannelStatus.ENABLED
            assert results[ids["ok"]].model == "gpt-4o-mini"
            assert not results[ids["revoked"]].success
            assert "Incorrect API key" in results[ids["revoked"]].message
            assert results[ids["revoked"]].status == ChannelStatus.AUTO_DISABLED
            assert results[ids["manual"]].success
            assert results[ids["manual"]].status == ChannelStatus.MANUALLY_DISABLED
            assert results[999].message == "no channel #999"
            assert await health.status("revoked") == ChannelStatus.AUTO_DISABLED
            assert await health.status("manual") == ChannelStatus.MANUALLY_DISABLED
            assert (await health.channel("manual")).test_time > 0

            # "test disabled channels" brings back the auto-disabled one that passes
            reply = await health.bus.request(
                ChannelTestRequest(only_disabled=True, wait=True), ChannelTestReply, timeout=10
            )
            tested = {result.channel_id for result in reply.results}
            assert tested == {ids["revoked"], ids["broken"]}
            assert await health.status("broken") == ChannelStatus.ENABLED
            assert await health.status("revoked") == ChannelStatus.AUTO_DISABLED
            assert await health.status("manual") == ChannelStatus.MANUALLY_DISABLED

            # "test all" runs in the background; an operator-chosen model is used
            before = len(fake.requests)
            reply = await health.bus.request(
                ChannelTestRequest(model="gpt-4o"), ChannelTestReply, timeout=10
            )
            assert reply.started
            await fake.wait_for_requests(before + 3)
            assert {r.json["model"] for r in fake.requests[before:]} == {"gpt-4o"}


async def test_a_credit_error_during_a_test_disables_and_no_option_no_action(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai") as fake:
        fake.add_rule(error("invalid_request", "Your credit balance is too low", status=400))
        channels = [SeedChannel("poor", 1, fake.url, ["gpt-4o-mini"])]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            options={"AutomaticDisableChannelEnabled": "false"},
        ) as health:
            request = ChannelTestRequest(channel_ids=[health.channels["poor"]])
            reply = await health.bus.request(request, ChannelTestReply, timeout=10)
            assert not reply.results[0].success
            assert await health.status("poor") == ChannelStatus.ENABLED  # option off

            await health.set_options(AutomaticDisableChannelEnabled="true")
            reply = await health.bus.request(request, ChannelTestReply, timeout=10)
            assert reply.results[0].status == ChannelStatus.AUTO_DISABLED
            assert await health.status("poor") == ChannelStatus.AUTO_DISABLED


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_other_families_are_tested_through_their_own_adaptor(
    provider: str, sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    channel_type, model = {
        "anthropic": (14, "claude-3-5-haiku"),
        "gemini": (24, "gemini-2.0-flash"),
    }[provider]
    async with FakeUpstream(provider) as fake:
        channels = [SeedChannel("c", channel_type, fake.url, [model])]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
        ) as health:
            request = ChannelTestRequest(channel_ids=[health.channels["c"]])
            reply = await health.bus.request(request, ChannelTestReply, timeout=10)
            assert reply.results[0].success, reply.results[0].message
            assert fake.requests[-1].path != "/v1/chat/completions"
