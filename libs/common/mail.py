"""Email over SMTP, configured by One API's options (`SMTPServer`, `SMTPPort`, ...).

    config = SmtpConfig.from_options(options)
    if config.configured:
        await send_mail(config, ["root@example.com"], "subject", "<p>html</p>")

One API's rules: the server is `SMTPServer:SMTPPort`; port 465 speaks TLS from the first byte
(implicit TLS), any other port upgrades with STARTTLS when the server offers it; the client
logs in when `SMTPAccount` or `SMTPToken` is set; the sender is `SMTPFrom` (else `SMTPAccount`),
shown under `SystemName`. Certificates are verified against the system's trust store.

`send_mail` runs smtplib in a worker thread, so the event loop never waits on the mail server.

Exceptions (one line each, never a password or token)::

    MailError
    ├── MailNotConfiguredError   SMTPServer or a sender (SMTPFrom / SMTPAccount) is unset
    └── MailDeliveryError        the server refused, or could not be reached
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from typing import Final

from libs.common.options import OptionValues

__all__ = [
    "IMPLICIT_TLS_PORT",
    "MailDeliveryError",
    "MailError",
    "MailNotConfiguredError",
    "SmtpConfig",
    "send_mail",
    "send_mail_blocking",
]

SMTP_TIMEOUT_SECONDS: Final = 15.0
IMPLICIT_TLS_PORT: Final = 465


class MailError(Exception):
    """Base of the errors raised by this module."""


class MailNotConfiguredError(MailError):
    """SMTP is not configured: nothing can be sent."""


class MailDeliveryError(MailError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom to send mail; built from the `options` table."""

    server: str
    port: int
    account: str
    token: str
    sender: str
    system_name: str

    @classmethod
    def from_options(cls, options: OptionValues) -> SmtpConfig:
        account = options.text("SMTPAccount")
        return cls(
            server=options.text("SMTPServer").strip(),
            port=options.integer("SMTPPort"),
            account=account,
            token=options.text("SMTPToken"),
            sender=options.text("SMTPFrom") or account,
            system_name=options.text("SystemName"),
        )

    @property
    def configured(self) -> bool:
        """Whether a server and a sender are set (One API sends nothing otherwise)."""
        return bool(self.server and self.sender)

    @property
    def implicit_tls(self) -> bool:
        """Port 465 speaks TLS from the first byte; other ports may upgrade with STARTTLS."""
        return self.port == IMPLICIT_TLS_PORT

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return (
            f"SmtpConfig(server={self.server!r}, port={self.port}, account={self.account!r}, "
            f"sender={self.sender!r})"
        )


def _recipients(to: Sequence[str]) -> list[str]:
    """Addresses, also accepting One API's `a@x;b@y` lists inside an item."""
    return [part.strip() for item in to for part in item.split(";") if part.strip()]


def send_mail_blocking(config: SmtpConfig, to: Sequence[str], subject: str, html: str) -> None:
    """Send one HTML message to `to`, blocking; raises a `MailError` on failure."""
    if not config.configured:
        raise MailNotConfiguredError("SMTP is not configured (SMTPServer, SMTPFrom or SMTPAccount)")
    recipients = _recipients(to)
    if not recipients:
        raise MailDeliveryError("no recipient address given")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((config.system_name, config.sender))
    message["To"] = ", ".join(recipients)
    message.set_content(html, subtype="html")
    try:
        client: smtplib.SMTP
        if config.implicit_tls:
            client = smtplib.SMTP_SSL(
                config.server,
                config.port,
                timeout=SMTP_TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(config.server, config.port, timeout=SMTP_TIMEOUT_SECONDS)
        with client:
            client.ehlo()
            if not config.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if config.account or config.token:
                client.login(config.account, config.token)
            client.send_message(message, from_addr=config.sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailDeliveryError(
            f"cannot send mail through {config.server}:{config.port}: {type(exc).__name__}"
        ) from None


async def send_mail(config: SmtpConfig, to: Sequence[str], subject: str, html: str) -> None:
    """Send one HTML message to `to` from a worker thread; raises a `MailError` on failure."""
    await asyncio.to_thread(send_mail_blocking, config, to, subject, html)
