"""``SmtpMailSender`` against a real SMTP server on loopback (aiosmtpd):
STARTTLS with a login, TLS from the first byte, plain; and how refusals,
a missing STARTTLS and a server that is not there are reported."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.smtp import SmtpMailSender
from engine.errors import PermanentError, TransientError
from tests.support.caldav_servers import free_port

MESSAGE = b"From: b@acme.example\r\nTo: ann@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"


class Inbox:
    def __init__(self, answer: str = "250 Message accepted") -> None:
        self.answer = answer
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return self.answer


class Login:
    """Accepts calpool / s3cret only; remembers who logged in."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (b"calpool",
                                                                                 b"s3cret"):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Controller] = []

    def start(handler: Any, **kwargs: Any) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


def test_starttls_with_a_login(serve: Any, certificates: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_file = certificates
    inbox, login = Inbox(), Login()
    port = serve(inbox, tls_context=context, require_starttls=True, authenticator=login,
                 auth_required=True)
    SmtpMailSender("127.0.0.1", port, security="starttls", username="calpool",
                   password=lambda: "s3cret", ca_file=ca_file, timeout=10
                   ).send(MESSAGE, "b@acme.example", ["ann@example.org"])
    assert login.logins == ["calpool"]
    [(sender, recipients, content)] = inbox.received
    assert (sender, recipients) == ("b@acme.example", ["ann@example.org"])
    assert b"Hello" in content


def test_a_wrong_password_is_permanent(serve: Any,
                                       certificates: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_file = certificates
    inbox = Inbox()
    port = serve(inbox, tls_context=context, require_starttls=True, authenticator=Login(),
                 auth_required=True)
    sender = SmtpMailSender("127.0.0.1", port, security="starttls", username="calpool",
                            password=lambda: "wrong", ca_file=ca_file, timeout=10)
    with pytest.raises(PermanentError, match="answered 535") as refused:
        sender.send(MESSAGE, "b@acme.example", ["ann@example.org"])
    assert "wrong" not in str(refused.value)
    assert inbox.received == []


def test_tls_from_the_first_byte(serve: Any, certificates: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_file = certificates
    inbox = Inbox()
    port = serve(inbox, ssl_context=context)
    SmtpMailSender("127.0.0.1", port, security="tls", ca_file=ca_file, timeout=10
                   ).send(MESSAGE, "b@acme.example", ["ann@example.org"])
    assert len(inbox.received) == 1


def test_an_untrusted_certificate_is_not_sent_to(serve: Any,
                                                 certificates: tuple[ssl.SSLContext, Path]
                                                 ) -> None:
    context, _ = certificates
    inbox = Inbox()
    port = serve(inbox, ssl_context=context)
    with pytest.raises(TransientError, match="could not be reached"):
        SmtpMailSender("127.0.0.1", port, security="tls", timeout=10
                       ).send(MESSAGE, "b@acme.example", ["ann@example.org"])
    assert inbox.received == []


def test_starttls_that_the_server_does_not_offer_is_refused(serve: Any) -> None:
    inbox = Inbox()
    port = serve(inbox)
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        SmtpMailSender("127.0.0.1", port, security="starttls", timeout=10
                       ).send(MESSAGE, "b@acme.example", ["ann@example.org"])
    assert inbox.received == []


@pytest.mark.parametrize(("answer", "error"), [
    ("451 Try again later", TransientError),
    ("554 Rejected", PermanentError),
])
def test_refusals_are_transient_or_permanent_by_their_code(
        serve: Any, answer: str, error: type[Exception]) -> None:
    port = serve(Inbox(answer))
    with pytest.raises(error, match=answer.split()[0]):
        SmtpMailSender("127.0.0.1", port, security="none", timeout=10
                       ).send(MESSAGE, "b@acme.example", ["ann@example.org"])


def test_no_server_is_transient() -> None:
    with pytest.raises(TransientError, match="could not be reached"):
        SmtpMailSender("127.0.0.1", free_port(), security="none", timeout=5
                       ).send(MESSAGE, "b@acme.example", ["ann@example.org"])


def test_an_unknown_security_is_refused() -> None:
    with pytest.raises(ValueError, match="security must be one of"):
        SmtpMailSender("127.0.0.1", 25, security="ssl")
