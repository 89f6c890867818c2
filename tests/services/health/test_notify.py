"""Notices to root: email, signed webhook, message pusher; each optional, none blocking."""

from __future__ import annotations

import hashlib
import hmac

import orjson

from libs.common.db.models import ChannelStatus
from services.health.notify import Notice, sign
from services.health.schemas import Transition
from tests.harness.process import free_port
from tests.services.health.support import (
    WEBHOOK_SECRET,
    WebhookReceiver,
    eventually,
    health_stack,
)
from tests.services.relay.stack import SeedChannel


def test_the_signature_covers_timestamp_and_body() -> None:
    body = b'{"event":"channel.disabled"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", body) == "sha256=" + expected
    assert sign("k", "1700000001", body) != sign("k", "1700000000", body)


def test_notices_speak_one_apis_words_and_escape_html() -> None:
    transition = Transition(
        channel_id=3,
        name="<b>x</b>",
        type=1,
        status=ChannelStatus.AUTO_DISABLED,
        reason="Incorrect API key (HTTP 401)",
        cause="rule",
        at=1_700_000_000,
    )
    notice = Notice.of(transition)
    assert notice.subject == "通道「<b>x</b>」（#3）已被禁用"
    assert notice.text == "通道「<b>x</b>」（#3）已被禁用，原因：Incorrect API key (HTTP 401)"
    assert "&lt;b&gt;" in notice.html
    assert "<b>x" not in notice.html
    assert notice.payload["event"] == "channel.disabled"
    assert orjson.loads(orjson.dumps(notice.payload))["channel"]["id"] == 3


async def test_a_webhook_that_fails_once_is_retried_and_a_dead_mail_server_blocks_nothing(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    async with WebhookReceiver(fail_first=1) as hook:
        options = {
            "AutomaticDisableChannelEnabled": "true",
            "SMTPServer": "127.0.0.1",
            "SMTPPort": str(free_port()),  # nothing listens
            "SMTPFrom": "oneapi@example.com",
            "MessagePusherAddress": hook.pusher_url,
            "MessagePusherToken": "push-token",
        }
        channels = [SeedChannel("a", 1, "http://127.0.0.1:9", ["m"])]
        async with health_stack(
            sql_dsn=sqlite_url,
            nats_url=nats_url,
            namespace=nats_namespace,
            channels=channels,
            options=options,
            notify_webhook_url=hook.url,
            notify_webhook_secret=WEBHOOK_SECRET,
        ) as health:
            await health.outcome("a", status_code=403, error_type="permission_error")
            await health.wait_status("a", ChannelStatus.AUTO_DISABLED, timeout=2)
            await eventually(lambda: len(hook.deliveries) == 1, timeout=5)
            assert hook.deliveries[0].signature_valid
            assert hook.deliveries[0].json["cause"] == "rule"
            await eventually(lambda: len(hook.pushes) == 1, timeout=5)
            assert hook.pushes[0]["token"] == "push-token"
            assert hook.pushes[0]["title"].endswith("已被禁用")

            def counted(via: str, result: str) -> float | None:
                return health.runtime.metrics.get_sample_value(
                    "oneapi_health_notifications_total", {"via": via, "result": result}
                )

            await eventually(lambda: counted("email", "failed") == 1, timeout=5)
            assert counted("webhook", "sent") == 1
            assert counted("message_pusher", "sent") == 1


async def test_without_any_way_configured_the_channel_still_goes(
    sqlite_url: str, nats_url: str, nats_namespace: str
) -> None:
    channels = [SeedChannel("a", 1, "http://127.0.0.1:9", ["m"])]
    async with health_stack(
        sql_dsn=sqlite_url,
        nats_url=nats_url,
        namespace=nats_namespace,
        channels=channels,
        options={"AutomaticDisableChannelEnabled": "true"},
    ) as health:
        await health.outcome("a", status_code=400, error_code="account_deactivated")
        await health.wait_status("a", ChannelStatus.AUTO_DISABLED, timeout=2)
        await eventually(lambda: health.channels["a"] in health.changed_channels())
        assert (
            health.runtime.metrics.get_sample_value(
                "oneapi_health_channel_transitions_total",
                {"to": "auto_disabled", "cause": "rule"},
            )
            == 1
        )
