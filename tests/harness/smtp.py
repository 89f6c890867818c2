"""A real SMTP server for tests (aiosmtpd in its own thread) and a throwaway TLS certificate."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.harness.process import free_port


@dataclass
class ReceivedMail:
    """One message as the server got it: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None
    tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        body = self.message.get_body(("html",))
        assert body is not None, "the message has no HTML part"
        return str(body.get_content())


@dataclass
class _Handler:
    received: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        transport = server.transport
        mail = ReceivedMail(
            sender=envelope.mail_from,
            recipients=list(envelope.rcpt_tos),
            message=parsed,
            authenticated_as=session.auth_data if session.authenticated else None,
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
        )
        with self.lock:
            self.received.append(mail)
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1: plain, STARTTLS (`starttls=cert`) or implicit TLS (`tls=cert`).

    `users` turns on AUTH (LOGIN/PLAIN) with these accounts; a wrong password is refused.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        starttls: TlsFiles | None = None,
        tls: TlsFiles | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self._handler = _Handler()
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs["tls_context"] = starttls.server_context()
        if tls is not None:
            kwargs["ssl_context"] = tls.server_context()
        if users is not None:
            kwargs["authenticator"] = self._authenticator(users)
            kwargs["auth_require_tls"] = False
        self._controller = Controller(self._handler, hostname=host, port=self.port, **kwargs)

    @staticmethod
    def _authenticator(users: dict[str, str]) -> Any:
        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if isinstance(data, LoginPassword):
                login, password = data.login.decode(), data.password.decode()
                if users.get(login) == password:
                    return AuthResult(success=True, auth_data=login)
            return AuthResult(success=False, handled=False)

        return authenticate

    @property
    def received(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until `count` messages arrived (deadline `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} messages arrived")
            time.sleep(0.01)
        return self.received

    async def wait_for_async(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        import asyncio

        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} messages arrived")
            await asyncio.sleep(0.01)
        return self.received

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, with its key."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path, ip: str = "127.0.0.1") -> TlsFiles:
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                f"subjectAltName=IP:{ip},DNS:localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context
