"""Mail reaches a real SMTP server: plain, STARTTLS, implicit TLS on 465, with login."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from libs.common.mail import (
    MailDeliveryError,
    MailNotConfiguredError,
    SmtpConfig,
    send_mail,
)
from libs.common.options import OptionValues
from tests.harness.process import free_port
from tests.harness.smtp import SmtpServer, TlsFiles


def config_for(server: SmtpServer, **options: str) -> SmtpConfig:
    return SmtpConfig.from_options(
        OptionValues(
            {
                "SMTPServer": server.host,
                "SMTPPort": str(server.port),
                "SMTPFrom": "oneapi@example.com",
                **options,
            }
        )
    )


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TlsFiles:
    """A self-signed certificate the client trusts (as if issued by a public CA)."""
    files = TlsFiles.create(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.cert))
    return files


def test_config_reads_one_api_options() -> None:
    config = SmtpConfig.from_options(
        OptionValues(
            {
                "SMTPServer": " smtp.example.com ",
                "SMTPPort": "465",
                "SMTPAccount": "bot@example.com",
                "SMTPToken": "s3cret",
                "SystemName": "My API",
            }
        )
    )
    assert config.server == "smtp.example.com"
    assert config.port == 465
    assert config.implicit_tls
    assert config.sender == "bot@example.com"  # SMTPFrom unset: the account sends
    assert config.system_name == "My API"
    assert config.configured
    assert "s3cret" not in repr(config)
    assert not SmtpConfig.from_options(OptionValues()).configured
    assert SmtpConfig.from_options(OptionValues()).port == 587


async def test_plain_server_receives_html_from_system_name() -> None:
    with SmtpServer() as server:
        config = config_for(server, SystemName="Gateway")
        await send_mail(config, ["root@example.com"], "通道已被禁用", "<b>hello</b> world")
        [mail] = server.wait_for(1)
    assert mail.recipients == ["root@example.com"]
    assert mail.sender == "oneapi@example.com"
    assert mail.subject == "通道已被禁用"
    assert "Gateway" in str(mail.message["From"])
    assert "<b>hello</b> world" in mail.html
    assert mail.authenticated_as is None
    assert not mail.tls


async def test_semicolon_lists_reach_every_recipient() -> None:
    with SmtpServer() as server:
        await send_mail(
            config_for(server), ["a@example.com; b@example.com", "c@example.com"], "s", "x"
        )
        [mail] = server.wait_for(1)
    assert mail.recipients == ["a@example.com", "b@example.com", "c@example.com"]


async def test_starttls_is_used_when_offered_and_login_follows(tls_files: TlsFiles) -> None:
    with SmtpServer(starttls=tls_files, users={"bot@example.com": "token-1"}) as server:
        config = config_for(server, SMTPAccount="bot@example.com", SMTPToken="token-1")
        await send_mail(config, ["root@example.com"], "subject", "<p>body</p>")
        [mail] = server.wait_for(1)
    assert mail.tls
    assert mail.authenticated_as == "bot@example.com"


async def test_implicit_tls_on_port_465(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A loopback address of this test's own, so that port 465 is free whatever runs beside it.
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    files = TlsFiles.create(tmp_path, ip=host)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.cert))
    server = SmtpServer(host=host, port=465, tls=files)
    try:
        server.__enter__()
    except (PermissionError, RuntimeError) as exc:  # not root: no port below 1024
        pytest.skip(f"cannot listen on {host}:465: {exc}")
    try:
        await send_mail(config_for(server), ["root@example.com"], "subject", "<p>tls</p>")
        [mail] = server.wait_for(1)
    finally:
        server.__exit__(None, None, None)
    assert mail.tls
    assert "<p>tls</p>" in mail.html


async def test_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    files = TlsFiles.create(tmp_path)  # not in the trust store
    with SmtpServer(starttls=files) as server:
        with pytest.raises(MailDeliveryError, match=r"cannot send mail through 127\.0\.0\.1"):
            await send_mail(config_for(server), ["root@example.com"], "s", "x")
        assert server.received == []


async def test_wrong_password_fails_without_revealing_it(tls_files: TlsFiles) -> None:
    with SmtpServer(starttls=tls_files, users={"bot@example.com": "right"}) as server:
        config = config_for(server, SMTPAccount="bot@example.com", SMTPToken="wrong-secret")
        with pytest.raises(MailDeliveryError) as caught:
            await send_mail(config, ["root@example.com"], "s", "x")
    assert "SMTPAuthenticationError" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


async def test_unreachable_server_and_missing_configuration() -> None:
    config = SmtpConfig.from_options(
        OptionValues({"SMTPServer": "127.0.0.1", "SMTPPort": str(free_port()), "SMTPFrom": "a@b.c"})
    )
    with pytest.raises(MailDeliveryError, match="ConnectionRefusedError"):
        await send_mail(config, ["root@example.com"], "s", "x")
    with pytest.raises(MailNotConfiguredError):
        await send_mail(SmtpConfig.from_options(OptionValues()), ["root@example.com"], "s", "x")
    with SmtpServer() as server, pytest.raises(MailDeliveryError, match="no recipient"):
        await send_mail(config_for(server), [" ; "], "s", "x")
