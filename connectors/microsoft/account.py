"""A Microsoft 365 account's settings, and the names calpool gives its
writes there.

One account is one Entra ID app registration of one tenant (app-only
access, client credentials); its calendars are mailboxes, named by their
user principal name or SMTP address (``calendars.<key>.id``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from connectors.retrying import RetryPolicy as RetryPolicy

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
"""The one scope of the client-credentials grant: every application
permission the tenant's admin granted the app."""

MICROSOFT_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
    "login.microsoftonline.de",
})
"""Microsoft's own sign-in hosts (public and national clouds); for any other
authority msal must not ask Microsoft's instance discovery about it."""

BOOKING_PROPERTY = "String {7c3e4b1a-9f2d-4c8e-b6a5-1d0e3f7a2c94} Name calpoolBooking"
"""The single-value extended property that carries the booking id on every
event calpool writes (a MAPI named property in calpool's own property set):
how a lost write is found again before posting twice."""

_TRANSACTION_PREFIX = "calpool-"


@dataclass(frozen=True, slots=True, kw_only=True)
class MicrosoftAccount:
    """``[accounts.<name>]`` with ``provider = "microsoft"``, secrets resolved.

    Exactly one credential: ``client_secret``, or ``certificate_key`` (the
    PEM private key of the app's certificate) with ``certificate_thumbprint``
    (its SHA-1 thumbprint, hex).  ``authority_url`` is the identity
    platform's root (the tenant is appended), ``graph_url`` Graph's
    versioned root.  ``ca_file`` replaces the system's CA store for both.
    ``timeout`` is per HTTP request; ``page_size`` what calpool asks of
    Graph with ``Prefer: odata.maxpagesize``."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_key: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    ca_file: str | None = None
    tentative_is_busy: bool = True
    timeout: float = 30.0
    page_size: int = 100
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        for name in ("graph_url", "authority_url"):
            url = getattr(self, name)
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.netloc:
                raise ValueError(f"{name} must be https://host/…, got {url!r}")
            object.__setattr__(self, name, url.rstrip("/"))
        with_secret = self.client_secret is not None
        with_certificate = self.certificate_key is not None
        if with_secret == with_certificate:
            raise ValueError("a Microsoft account needs a client secret or a certificate")
        if with_certificate and not self.certificate_thumbprint:
            raise ValueError("a certificate credential needs its thumbprint")
        if not self.tenant_id or not self.client_id:
            raise ValueError("a Microsoft account needs tenant_id and client_id")

    @property
    def authority(self) -> str:
        """The tenant's authority, as msal takes it."""
        return f"{self.authority_url}/{self.tenant_id}"

    @property
    def microsoft_authority(self) -> bool:
        """Whether the authority is one of Microsoft's own sign-in hosts."""
        return (urlsplit(self.authority_url).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS

    @property
    def credential(self) -> str | dict[str, str]:
        """msal's ``client_credential``."""
        if self.client_secret is not None:
            return self.client_secret
        assert self.certificate_key is not None and self.certificate_thumbprint is not None
        return {
            "private_key": self.certificate_key,
            "thumbprint": self.certificate_thumbprint.replace(":", "").lower(),
        }


def transaction_id(booking_id: str) -> str:
    """The ``transactionId`` of the booking's event: Graph answers a second
    POST carrying it with the event the first one created.  Reversible
    (:func:`booking_of_transaction`), because delta answers carry no
    extended properties but do carry ``transactionId``: sync recognises
    calpool's events by it."""
    encoded = base64.urlsafe_b64encode(booking_id.encode()).decode().rstrip("=")
    return _TRANSACTION_PREFIX + encoded


def booking_of_transaction(value: object) -> str | None:
    """The booking id a ``transactionId`` of :func:`transaction_id` carries;
    ``None`` for anyone else's (or none)."""
    if not isinstance(value, str) or not value.startswith(_TRANSACTION_PREFIX):
        return None
    encoded = value[len(_TRANSACTION_PREFIX):]
    try:
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded and transaction_id(decoded) == value else None
