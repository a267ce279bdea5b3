"""Fast connector tests replayed from cassettes (vcrpy): the connector's
exchanges with the Calendar fake, recorded once through googleapiclient
and google-auth with the secrets scrubbed (see ``cassettes/README.md``).
Replay needs no server: vcrpy answers httplib2 from the cassette, matched
by method, path and query (the fake's port differs per run).

Record anew with ``CALPOOL_RECORD_CASSETTES=1`` (the fake is then started).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vcr
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.google import GoogleAccount, GoogleConnector, RetryPolicy
from engine.core.model import Attendee, Interval
from engine.ports import CalendarRef, EventDraft
from tests.fakes.google_calendar import GoogleCalendarFake

CASSETTES = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("CALPOOL_RECORD_CASSETTES") == "1"
USER = "cassette-user@acme.test"
WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
SCRUBBED = "scrubbed"


def _scrub_request(request: Any) -> Any:
    if request.path.endswith("/token"):
        request.body = SCRUBBED.encode()  # the signed JWT assertion
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response["body"].get("string", b"")
    try:
        document = json.loads(body)
    except (ValueError, TypeError):
        return response
    if isinstance(document, dict) and "access_token" in document:
        document["access_token"] = SCRUBBED
        response["body"]["string"] = json.dumps(document).encode()
    return response


RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    match_on=["method", "path", "query"],
    filter_headers=["authorization"],
    before_record_request=_scrub_request,
    before_record_response=_scrub_response,
    decode_compressed_response=True,
)


def _test_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def account() -> Iterator[GoogleAccount]:
    """Recording: an account of a running fake, with a few events. Replay:
    an account with a key of its own and an address nothing listens on
    (every answer comes from the cassette)."""
    if not RECORD:
        yield GoogleAccount(
            service_account_info={"type": "service_account", "client_email": "calpool@acme-proj"
                                  ".iam.gserviceaccount.com", "private_key": _test_key(),
                                  "private_key_id": "replay", "token_uri": "http://127.0.0.1:9/token"},
            subject=USER, api_url="http://127.0.0.1:9/", retry=RetryPolicy(attempts=1))
        return
    with GoogleCalendarFake() as fake:
        fake.delegate(USER)
        fake.add_calendar(USER, timezone="Europe/Berlin")
        berlin = {"timeZone": "Europe/Berlin"}
        fake.insert(USER, {"summary": "standup", "iCalUID": "standup@acme.test",
                           "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
                           "start": {"dateTime": "2027-03-02T09:00:00", **berlin},
                           "end": {"dateTime": "2027-03-02T09:15:00", **berlin}})
        fake.insert(USER, {"summary": "off", "start": {"date": "2027-03-05"},
                           "end": {"date": "2027-03-06"}, "transparency": "transparent"})
        yield GoogleAccount(service_account_info=fake.service_account_info(
            client_email="calpool@acme-proj.iam.gserviceaccount.com"), subject=USER,
            api_url=fake.api_url, retry=RetryPolicy(attempts=1))


def test_listing_writing_and_reading_back(account: GoogleAccount) -> None:
    calendar = CalendarRef(USER, "Europe/Berlin", USER)
    booking = EventDraft(booking_id="bk-cassette", title="Consultation",
                         start=datetime(2027, 3, 10, 14, tzinfo=UTC),
                         end=datetime(2027, 3, 10, 14, 30, tzinfo=UTC),
                         attendees=(Attendee("Carol", "carol@example.net"),))
    with RECORDER.use_cassette("list_write_read.yaml"):
        connector = GoogleConnector(account)
        listing = connector.list_window(calendar, WINDOW)
        written = connector.create_event(calendar, booking)
        changes = connector.changes_since(calendar, listing.cursor, WINDOW)
        state = connector.read_event(calendar, "bk-cassette", source=written.source)

    series = [instances for instances in listing.objects.values() if len(instances) == 3]
    assert len(series) == 1 and all(e.busy and e.uid == "standup@acme.test" for e in series[0])
    (all_day,) = [i for i in listing.objects.values() if len(i) == 1]
    assert not all_day[0].busy
    assert all_day[0].start == datetime(2027, 3, 4, 23, tzinfo=UTC)  # midnight in Berlin
    assert list(changes.objects) == [written.source]
    assert [e.booking_id for e in changes.objects[written.source]] == ["bk-cassette"]
    assert state is not None and state.start == booking.start
