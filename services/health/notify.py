"""Tells root about every automatic channel disable and enable, without ever blocking.

Three ways, each optional and independent:

* email to every enabled root user with an address, through the SMTP options (One API's
  subject and text: 通道「name」（#id）已被禁用，原因：...);
* a webhook (`NOTIFY_WEBHOOK_URL`): a JSON POST signed with `NOTIFY_WEBHOOK_SECRET`:
  ``X-Oneapi-Timestamp: <unix seconds>`` and
  ``X-Oneapi-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``; a receiver
  recomputes it and refuses stale timestamps, so a captured notice cannot be replayed;
* One API's message pusher (`MessagePusherAddress`, `MessagePusherToken` options).

Sending happens in background tasks after the transition committed; a failure is logged and
counted, retried a little for the webhook, and never reaches the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from libs.common.db import Database
from libs.common.mail import MailError, SmtpConfig, send_mail
from libs.common.options import OptionValues
from services.health import repository
from services.health.metrics import HealthMetrics
from services.health.schemas import Transition

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Oneapi-Signature"
TIMESTAMP_HEADER: Final = "X-Oneapi-Timestamp"
EVENT_HEADER: Final = "X-Oneapi-Event"
WEBHOOK_TIMEOUT_SECONDS: Final = 10.0
WEBHOOK_ATTEMPTS: Final = 3
WEBHOOK_BACKOFF_SECONDS: Final = 1.0
MAX_PENDING: Final = 64
"""Notices being sent at once; beyond, new ones are dropped (a dead mail server must not
pile up tasks)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True)
class Notice:
    """What root is told about one transition, in One API's words."""

    subject: str
    text: str
    html: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, transition: Transition) -> Notice:
        label = f"通道「{transition.name}」（#{transition.channel_id}）"
        if transition.disabled:
            subject = f"{label}已被禁用"
            text = f"{subject}，原因：{transition.reason}"
            event = "channel.disabled"
        else:
            subject = f"{label}已被启用"
            text = subject
            event = "channel.enabled"
        return cls(
            subject=subject,
            text=text,
            html=f"<p>{html.escape(text)}</p>",
            payload={
                "event": event,
                "channel": {
                    "id": transition.channel_id,
                    "name": transition.name,
                    "type": transition.type,
                },
                "status": transition.status,
                "reason": transition.reason,
                "cause": transition.cause,
                "subject": subject,
                "at": transition.at,
            },
        )


class Notifier:
    """Sends notices in background tasks; `notify` returns at once."""

    def __init__(
        self,
        database: Database,
        options: Callable[[], OptionValues],
        http: aiohttp.ClientSession,
        metrics: HealthMetrics,
        *,
        webhook_url: str = "",
        webhook_secret: str = "",
    ) -> None:
        self._database = database
        self._options = options
        self._http = http
        self._metrics = metrics
        self._webhook_url = webhook_url.strip()
        self._webhook_secret = webhook_secret
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, transition: Transition) -> None:
        """Queue the notices of `transition`."""
        if len(self._tasks) >= MAX_PENDING:
            logger.warning(
                "notification backlog full: channel #%d change not notified", transition.channel_id
            )
            self._metrics.notifications.labels("all", "dropped").inc()
            return
        task = asyncio.create_task(self._send(Notice.of(transition), self._options()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, notice: Notice, options: OptionValues) -> None:
        await asyncio.gather(
            self._email(notice, options),
            self._webhook(notice),
            self._message_pusher(notice, options),
        )

    async def _email(self, notice: Notice, options: OptionValues) -> None:
        config = SmtpConfig.from_options(options)
        if not config.configured:
            return
        try:
            async with self._database.session() as session:
                recipients = await repository.root_emails(session)
        except Exception as exc:
            logger.warning("cannot read root's email address: %s", type(exc).__name__)
            self._metrics.notifications.labels("email", "failed").inc()
            return
        if not recipients:
            logger.info("root has no email address: %s not mailed", notice.subject)
            return
        try:
            await send_mail(config, recipients, notice.subject, notice.html)
        except MailError as exc:
            logger.warning("notice %r not mailed: %s", notice.subject, exc)
            self._metrics.notifications.labels("email", "failed").inc()
        else:
            self._metrics.notifications.labels("email", "sent").inc()

    async def _webhook(self, notice: Notice) -> None:
        if not self._webhook_url:
            return
        body = orjson.dumps(notice.payload)
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "oneapi-health",
                EVENT_HEADER: str(notice.payload["event"]),
                TIMESTAMP_HEADER: timestamp,
            }
            if self._webhook_secret:
                headers[SIGNATURE_HEADER] = sign(self._webhook_secret, timestamp, body)
            try:
                async with self._http.post(
                    self._webhook_url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
                retry = True
            else:
                if status < 300:
                    self._metrics.notifications.labels("webhook", "sent").inc()
                    return
                problem = f"HTTP {status}"
                retry = status >= 500 or status == 429
            if not retry or attempt == WEBHOOK_ATTEMPTS:
                logger.warning(
                    "webhook notice %r not delivered (%s, attempt %d)",
                    notice.subject,
                    problem,
                    attempt,
                )
                self._metrics.notifications.labels("webhook", "failed").inc()
                return
            await asyncio.sleep(WEBHOOK_BACKOFF_SECONDS * attempt)

    async def _message_pusher(self, notice: Notice, options: OptionValues) -> None:
        address = options.text("MessagePusherAddress").strip()
        if not address:
            return
        payload = {
            "title": notice.subject,
            "description": notice.text,
            "content": notice.text,
            "token": options.text("MessagePusherToken"),
        }
        try:
            async with self._http.post(
                address,
                data=orjson.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
            ) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("message pusher unreachable: %s", type(exc).__name__)
            self._metrics.notifications.labels("message_pusher", "failed").inc()
            return
        accepted = status < 300
        try:
            reply = orjson.loads(answer)
            if isinstance(reply, dict) and reply.get("success") is False:
                accepted = False
        except orjson.JSONDecodeError:
            pass
        if accepted:
            self._metrics.notifications.labels("message_pusher", "sent").inc()
        else:
            logger.warning("message pusher refused notice %r (HTTP %d)", notice.subject, status)
            self._metrics.notifications.labels("message_pusher", "failed").inc()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a shutdown bound
        """Wait (up to `timeout` seconds) for notices being sent, then give up on them."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
