"""Relay outcomes take failing channels out of rotation; root hears of it; recovery brings
them back. Relay and health run together here, on real services, against fake upstreams."""

from __future__ import annotations

import time

import httpx

from libs.common.db.models import ChannelStatus, LogType
from libs.common.events import ChannelTestReply, ChannelTestRequest
from tests.fakes import FakeUpstream, error, reply
from tests.harness.smtp import SmtpServer
from tests.services.health.support import (
    ROOT_EMAIL,
    WEBHOOK_SECRET,
    Health,
    WebhookReceiver,
    eventually,
    health_stack,
)
from tests.services.relay.stack import SeedChannel

MODEL = "gpt-4o-mini"


def options_for(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "AutomaticDisableChannelEnabled": "true",
        "AutomaticEnableChannelEnabled": "true",
        "SMTPServer": smtp.host,
        "SMTPPort": str(smtp.port),
        "SMTPFrom": "oneapi@example.com",
        **extra,
    }


async def chat(client: httpx.AsyncClient, health: Health) -> httpx.Response:
    return await client.post(
        f"{health.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {health.root_key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )


async def test_a_401_disables_at_once_relays_stop_using_it_root_hears_and_a_pass_restores_it(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with (
        FakeUpstream("openai", keys=["good"]) as bad,
        FakeUpstream("openai") as good,
        WebhookReceiver() as hook,
        httpx.AsyncClient(timeout=10) as client,
    ):
        with SmtpServer() as smtp:
            channels = [
                SeedChannel("bad", 1, bad.url, [MODEL], key="revoked", priority=10),
                SeedChannel("good", 1, good.url, [MODEL], key="k"),
            ]
            async with health_stack(
                sql_dsn=sqlite_url,
                nats_url=nats_url,
                namespace=nats_namespace,
                channels=channels,
                options=options_for(smtp),
                targets=("relay", "health"),
                notify_webhook_url=hook.url,
                notify_webhook_secret=WEBHOOK_SECRET,
            ) as health:
                bad_id = health.channels["bad"]
                first = await chat(client, health)  # the higher priority: the bad channel
                assert first.status_code != 200
                await health.wait_status("bad", ChannelStatus.AUTO_DISABLED, timeout=2)
                assert await health.abilities_enabled("bad") == {False}
                await eventually(lambda: bad_id in health.changed_channels(), timeout=1)
                announced = time.monotonic()

                async def relay_avoids_it() -> bool:
                    return (await chat(client, health)).status_code == 200

                await eventually(relay_avoids_it, timeout=1)
                assert time.monotonic() - announced < 1
                served_by_bad = bad.state.request_count
                for _ in range(5):
                    assert (await chat(client, health)).status_code == 200
                assert bad.state.request_count == served_by_bad

                [mail] = await smtp.wait_for_async(1)
                assert mail.recipients == [ROOT_EMAIL]
                assert mail.subject == f"通道「bad」（#{bad_id}）已被禁用"
                assert "Incorrect API key" in mail.html
                await eventually(lambda: len(hook.deliveries) == 1, timeout=5)
                notice = hook.deliveries[0]
                assert notice.signature_valid
                assert notice.json["event"] == "channel.disabled"
                assert notice.json["channel"] == {"id": bad_id, "name": "bad", "type": 1}
                assert notice.json["status"] == ChannelStatus.AUTO_DISABLED
                assert "HTTP 401" in notice.json["reason"]

                bad.state.set_keys(None)  # the key works again
                request = ChannelTestRequest(channel_ids=[bad_id])
                answer = await health.bus.request(request, ChannelTestReply, timeout=10)
                assert answer.results[0].status == ChannelStatus.ENABLED
                assert await health.abilities_enabled("bad") == {True}
                await eventually(lambda: health.changed_channels().count(bad_id) == 2)

                async def relay_uses_it_again() -> bool:
                    await chat(client, health)
                    return bad.state.request_count > served_by_bad

                await eventually(relay_uses_it_again, timeout=2)
                mails = await smtp.wait_for_async(2)
                assert mails[1].subject == f"通道「bad」（#{bad_id}）已被启用"
                await eventually(lambda: len(hook.deliveries) == 2, timeout=5)
                assert hook.deliveries[1].json["event"] == "channel.enabled"
                assert hook.deliveries[1].signature_valid
                assert await health.status("good") == ChannelStatus.ENABLED


async def test_a_credit_message_disables_and_a_manual_channel_is_never_touched(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with (
        FakeUpstream("openai") as poor,
        WebhookReceiver() as hook,
        httpx.AsyncClient(timeout=10) as client,
    ):
        poor.add_rule(
            error("invalid_request", "Your credit balance is too low to access the API", status=400)
        )
        with SmtpServer() as smtp:
            channels = [
                SeedChannel("poor", 1, poor.url, [MODEL]),
                SeedChannel("manual", 1, poor.url, ["other-model"], status=2),
            ]
            async with health_stack(
                sql_dsn=sqlite_url,
                nats_url=nats_url,
                namespace=nats_namespace,
                channels=channels,
                options=options_for(smtp),
                targets=("relay", "health"),
                notify_webhook_url=hook.url,
                notify_webhook_secret=WEBHOOK_SECRET,
            ) as health:
                assert (await chat(client, health)).status_code == 400
                await health.wait_status("poor", ChannelStatus.AUTO_DISABLED, timeout=2)
                [mail] = await smtp.wait_for_async(1)
                assert "credit balance is too low" in mail.html
                await eventually(lambda: len(hook.deliveries) == 1, timeout=5)

                # a relay's 401 on a manually disabled channel (a request in flight when the
                # operator switched it off) changes nothing, and a passing test neither
                await health.outcome("manual", status_code=401, error_message="Invalid key")
                poor.state.clear_rules()
                request = ChannelTestRequest(channel_ids=[health.channels["manual"]])
                answer = await health.bus.request(request, ChannelTestReply, timeout=10)
                assert answer.results[0].success
                assert await health.status("manual") == ChannelStatus.MANUALLY_DISABLED
                assert health.channels["manual"] not in health.changed_channels()
                assert len(smtp.received) == 1
                assert len(hook.deliveries) == 1


async def test_a_burst_of_500s_disables_once_the_window_is_full(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with FakeUpstream("openai") as flaky, httpx.AsyncClient(timeout=10) as client:
        channels = [SeedChannel("flaky", 1, flaky.url, [MODEL])]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            options={"AutomaticDisableChannelEnabled": "true"},
            targets=("relay", "health"),
            enable_metric=True,
            metric_queue_size=4,
            metric_success_rate_threshold=0.8,
        ) as health:
            channel = str(health.channels["flaky"])

            def rate() -> float | None:
                return health.runtime.metrics.get_sample_value(
                    "oneapi_health_channel_success_rate", {"channel": channel}
                )

            flaky.push(
                reply("ok"), error("server_error"), error("server_error"), error("context_length")
            )
            assert (await chat(client, health)).status_code == 200
            for _ in range(2):
                assert (await chat(client, health)).status_code == 500
            # a prompt too long is the client's doing: it does not count against the channel
            assert (await chat(client, health)).status_code == 400
            await eventually(lambda: rate() is not None and abs(rate() - 1 / 3) < 1e-9)  # type: ignore[operator]
            assert await health.status("flaky") == ChannelStatus.ENABLED  # window not full yet

            # the window fills with a success: 2 of 4 is below 80% (had the 400 counted, the
            # channel would have gone at 1 of 4 already)
            assert (await chat(client, health)).status_code == 200
            await health.wait_status("flaky", ChannelStatus.AUTO_DISABLED, timeout=2)
            [log] = await health.logs(LogType.SYSTEM)
            assert "成功率 50.00% 低于阈值 80.00%" in log.content
            assert health.changed_channels() == [int(channel)]
