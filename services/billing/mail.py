"""Quota reminder emails over SMTP, configured by One API's options.

Sending (`libs.common.mail`, One API's SMTP rules) runs after the batch committed and never
holds billing up: failures are logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Final

from libs.common.mail import MailError, SmtpConfig, send_mail
from libs.common.options import OptionValues
from services.billing.metrics import BillingMetrics
from services.billing.service import Reminder

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS: Final = 15.0
IMPLICIT_TLS_PORT: Final = 465
MAX_SENDING_TASKS: Final = 4


def reminder_message(reminder: Reminder, options: OptionValues) -> tuple[str, str]:
    """Subject and HTML body, in One API's words."""
    subject = "您的额度已用尽" if reminder.exhausted else "您的额度即将用尽"
    link = options.text("TopUpLink") or options.text("ServerAddress").rstrip("/") + "/topup"
    body = (
        f"{subject}，当前剩余额度为 {reminder.quota}，为了不影响您的使用，请及时充值。"
        f"<br/>充值链接：<a href='{link}'>{link}</a>"
    )
    return subject, body


class Reminders:
    """Sends quota reminders in the background, a few batches at a time at most."""

    def __init__(self, options: Callable[[], OptionValues], metrics: BillingMetrics) -> None:
        self._options = options
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, reminders: Sequence[Reminder]) -> None:
        """Queue `reminders`; returns at once. Dropped (and logged) when SMTP is unset or too
        many sends are already running (a stuck mail server must not pile up tasks)."""
        if not reminders:
            return
        options = self._options()
        config = SmtpConfig.from_options(options)
        if not config.configured:
            logger.debug("SMTP not configured: %d quota reminders not sent", len(reminders))
            return
        if len(self._tasks) >= MAX_SENDING_TASKS:
            logger.warning("mail backlog full: %d quota reminders dropped", len(reminders))
            self._metrics.reminders.labels("dropped").inc(len(reminders))
            return
        task = asyncio.create_task(self._send(config, options, list(reminders)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, config: SmtpConfig, options: OptionValues, batch: list[Reminder]) -> None:
        for reminder in batch:
            subject, body = reminder_message(reminder, options)
            try:
                await send_mail(config, [reminder.email], subject, body)
            except MailError as exc:
                logger.warning("quota reminder to user %d not sent: %s", reminder.user_id, exc)
                self._metrics.reminders.labels("failed").inc()
            else:
                self._metrics.reminders.labels("sent").inc()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a shutdown bound
        """Wait (up to `timeout` seconds) for reminders being sent."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
