"""Login and the error boundary of the Microsoft connector, against the
Graph fake through msal and requests: a token re-acquired after Graph
stops honouring it, certificate credentials, TLS trust that the
environment cannot override, throttling with Retry-After, and every
failure mapped onto :mod:`engine.errors` (nothing of msal or requests
escapes)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector, RetryPolicy
from connectors.microsoft.failures import to_connector_error
from engine.core.model import Interval
from engine.errors import (
    AuthFailed,
    ConnectorError,
    CursorExpired,
    PermanentError,
    RateLimited,
    TransientError,
)
from engine.ports import CalendarRef, EventDraft
from tests.fakes.graph import GraphFake

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def _posts_to_token_endpoint(fake: GraphFake) -> int:
    return sum(1 for method, path, _, _ in fake.requests
               if method == "POST" and path.endswith("/oauth2/v2.0/token"))


def _requests_to(fake: GraphFake, fragment: str) -> int:
    return sum(1 for _, path, _, _ in fake.requests if fragment in path)


def test_a_token_graph_no_longer_honours_is_replaced_once(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    connector.list_window(mailbox, WINDOW)
    connector.list_window(mailbox, WINDOW)
    tokens = _posts_to_token_endpoint(fake)

    fake.expire_access_tokens()  # msal still holds its token: Graph answers 401

    assert dict(connector.list_window(mailbox, WINDOW).objects) == {}
    assert _posts_to_token_endpoint(fake) == tokens + 1


def test_refused_credentials_and_unknown_tenants_are_auth_failed(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    for refused in (replace(account, client_secret="wrong"),
                    replace(account, tenant_id="00000000-0000-0000-0000-000000000000")):
        with pytest.raises(AuthFailed) as caught:
            MicrosoftConnector(refused).list_window(mailbox, WINDOW)
        assert caught.value.calendar == mailbox.id


def _certificate() -> tuple[str, bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calpool test app")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return (key_pem, certificate.public_bytes(serialization.Encoding.PEM),
            certificate.fingerprint(hashes.SHA1()).hex())  # Entra's x5t thumbprint is SHA-1


def test_a_certificate_credential_signs_in(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    key_pem, cert_pem, thumbprint = _certificate()
    fake.add_certificate(cert_pem)
    with_certificate = replace(account, client_secret=None, certificate_key=key_pem,
                               certificate_thumbprint=thumbprint.upper())
    assert dict(MicrosoftConnector(with_certificate).list_window(mailbox, WINDOW).objects) == {}

    other_key, _, other_thumbprint = _certificate()  # not registered with the app
    unregistered = replace(with_certificate, certificate_key=other_key,
                           certificate_thumbprint=other_thumbprint)
    with pytest.raises(AuthFailed):
        MicrosoftConnector(unregistered).list_window(mailbox, WINDOW)


def test_the_environment_cannot_override_the_accounts_ca(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # would swallow every request
    assert dict(MicrosoftConnector(account).list_window(mailbox, WINDOW).objects) == {}

    distrusting = replace(account, ca_file=str(stranger))
    with pytest.raises(PermanentError) as caught:  # a certificate no CA of ours vouches for
        MicrosoftConnector(distrusting).list_window(mailbox, WINDOW)
    assert "SSLError" in caught.value.detail


def test_instance_discovery_is_off_for_an_authority_not_microsofts(
    account: MicrosoftAccount,
) -> None:
    assert not account.microsoft_authority
    assert replace(account, authority_url="https://login.microsoftonline.com").microsoft_authority


def test_throttling_within_the_policy_is_waited_out(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    patient = MicrosoftConnector(replace(account, retry=RetryPolicy(attempts=3, max_wait=2)))
    fake.fail(path=f"{mailbox.id}/calendarView/delta", status=429, code="ApplicationThrottled",
              retry_after=1, times=1)
    before = _requests_to(fake, f"{mailbox.id}/calendarView/delta")

    assert patient.list_window(mailbox, WINDOW).full

    assert _requests_to(fake, f"{mailbox.id}/calendarView/delta") == before + 2


@pytest.mark.parametrize(("status", "retry_after", "error", "wait"), [
    (429, 120, RateLimited, 120.0),   # longer than the policy waits: the caller's to schedule
    (503, 7, RateLimited, 7.0),
    (504, None, TransientError, None),
    (403, None, AuthFailed, None),
    (400, None, PermanentError, None),
])
def test_graph_failures_map_onto_the_error_tree(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef,
    status: int, retry_after: int | None, error: type[ConnectorError], wait: float | None,
) -> None:
    fake.fail(path=f"{mailbox.id}/calendarView/delta", status=status, code="Failure",
              retry_after=retry_after, times=1)
    with pytest.raises(error) as caught:
        connector.list_window(mailbox, WINDOW)
    assert caught.value.calendar == mailbox.id
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == wait
    assert type(caught.value) is error or error is TransientError


def test_resync_required_on_a_delta_link_expires_the_cursor(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    cursor = connector.list_window(mailbox, WINDOW).cursor
    fake.fail(path=f"{mailbox.id}/calendarView/delta", status=410, code="resyncRequired")
    with pytest.raises(CursorExpired) as caught:
        connector.changes_since(mailbox, cursor, WINDOW)
    assert caught.value.cursor == cursor


def test_no_exception_of_the_libraries_escapes_unmapped() -> None:
    def raised_in_msal() -> BaseException:
        import msal.authority

        try:
            msal.authority.canonicalize("not a url")
        except ValueError as exc:
            return exc
        raise AssertionError("msal accepted a bad authority")

    cases: list[tuple[BaseException, type[ConnectorError]]] = [
        (requests.exceptions.ConnectionError("refused"), TransientError),
        (requests.exceptions.ReadTimeout("slow"), TransientError),
        (requests.exceptions.SSLError("untrusted"), PermanentError),
        (requests.exceptions.InvalidJSONError("garbage"), PermanentError),
        (raised_in_msal(), AuthFailed),
        (json.JSONDecodeError("bad", "x", 0), PermanentError),
    ]
    for exc, expected in cases:
        mapped = to_connector_error(exc, calendar="c@x")
        assert isinstance(mapped, expected), (exc, mapped)
    assert to_connector_error(KeyError("calpool's own bug")) is None


def test_a_fifth_concurrent_request_is_throttled_and_retried_after_its_wait(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    """Outlook serves four concurrent requests per mailbox; the fifth gets
    429 MailboxConcurrency with Retry-After, which the connector waits out."""
    outcomes: list[str] = []
    patient = MicrosoftConnector(replace(account, retry=RetryPolicy(attempts=4, max_wait=3)),
                                 observe=outcomes.append)
    patient.list_window(mailbox, WINDOW)  # the token, before the race
    fake.fail(path=f"{mailbox.id}/calendarView/delta", status=200, delay=0.5, times=8)
    with ThreadPoolExecutor(8) as pool:
        listings = list(pool.map(lambda _: patient.list_window(mailbox, WINDOW), range(8)))
    assert all(listing.full for listing in listings)
    assert "4xx" in outcomes  # some were throttled, and got through on their retry


def test_a_create_that_timed_out_is_retried_into_one_event(
    fake: GraphFake, account: MicrosoftAccount, mailbox: CalendarRef
) -> None:
    """A POST held past the account's timeout is a ``TransientError``; the
    retry (the outbox's) looks the booking up first and leaves one event
    (had the held POST landed meanwhile, the lookup would find it; were it
    still in flight, its transactionId would make Graph answer the
    retry's event)."""
    impatient = MicrosoftConnector(replace(account, timeout=0.5))
    draft = EventDraft(booking_id="bk-timed-out", title="Consultation",
                       start=datetime(2027, 3, 10, 14, tzinfo=UTC),
                       end=datetime(2027, 3, 10, 14, 30, tzinfo=UTC))
    impatient.list_window(mailbox, WINDOW)  # the token first
    fake.fail(method="POST", path=f"{mailbox.id}/events$", status=200, delay=1.5)
    with pytest.raises(TransientError):
        impatient.create_event(mailbox, draft)

    retried = impatient.create_event(mailbox, draft)

    assert [e["id"] for e in fake.events(mailbox.id)] == [retried.source]
    assert impatient.create_event(mailbox, draft).source == retried.source
    assert [e["id"] for e in fake.events(mailbox.id)] == [retried.source]
