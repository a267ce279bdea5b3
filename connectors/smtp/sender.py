"""``SmtpMailSender``: one SMTP session per message, through smtplib.

``security`` is ``starttls`` (plain connection upgraded with STARTTLS
before anything else is said; a server that does not offer it is refused),
``tls`` (TLS from the first byte, SMTPS) or ``none`` (plain, for a relay on
the same host).  TLS verifies the server's certificate against the
system's trust store, or ``ca_file`` when given.  A login is made when a
username is set.

A 4xx answer, a refused or dropped connection, a timeout or a TLS failure
is a :class:`TransientError` (the caller retries later); a 5xx answer is a
:class:`PermanentError`.  The error's sentence never holds the password.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.errors import PermanentError, TransientError

SECURITIES = ("starttls", "tls", "none")


class SmtpMailSender:
    def __init__(self, host: str, port: int, *, security: str = "starttls",
                 username: str | None = None, password: Callable[[], str] | None = None,
                 timeout: float = 30.0, ca_file: Path | None = None) -> None:
        if security not in SECURITIES:
            raise ValueError(f"security must be one of {', '.join(SECURITIES)}, not {security!r}")
        self._host = host
        self._port = port
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ca_file = ca_file

    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> None:
        where = f"the mail server {self._host}:{self._port}"
        try:
            with self._connect() as client:
                if self._security == "starttls":
                    client.ehlo()
                    if not client.has_extn("starttls"):
                        raise PermanentError(f"{where} does not offer STARTTLS "
                                             "(set smtp.security to match the server)")
                    client.starttls(context=self._context())
                    client.ehlo()
                if self._username is not None:
                    client.login(self._username, self._password() if self._password else "")
                refused = client.sendmail(sender, list(recipients), message)
        except smtplib.SMTPResponseException as exc:
            detail = f"{where} answered {exc.smtp_code}: {_text(exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                raise TransientError(detail) from None
            raise PermanentError(detail) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = f"{where} refused every recipient ({', '.join(map(str, codes))})"
            if all(400 <= code < 500 for code in codes):
                raise TransientError(detail) from None
            raise PermanentError(detail) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{where}: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused or dropped connections, timeouts, TLS failures.
            raise TransientError(f"{where} could not be reached: {exc or type(exc).__name__}"
                                 ) from None
        if refused:
            codes = [code for code, _ in refused.values()]
            raise PermanentError(f"{where} refused some recipients ({', '.join(map(str, codes))})")

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout,
                                    context=self._context())
        return smtplib.SMTP(self._host, self._port, timeout=self._timeout,
                            local_hostname=socket.getfqdn() or "localhost")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(
            cafile=str(self._ca_file) if self._ca_file is not None else None)


def _text(error: bytes | str) -> str:
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return " ".join(text.split())[:300]
