"""Fast Microsoft connector tests replayed from vcrpy cassettes: the
connector's exchanges with the Graph fake (``tests/fakes/graph/``),
recorded once through the real msal and requests, secrets scrubbed (see
``cassettes/README.md``).  Replay starts no server: vcrpy answers the
``requests`` calls of msal and of the connector from the cassette, matched
by method, path and query, so nothing here is a fake's rule read twice —
each case asserts what the connector made of Graph's recorded answers.

* ``delta_paging.yaml``: the token grant (msal's OpenID configuration and
  client-credentials POST), a ``calendarView/delta`` listing over several
  pages (``@odata.nextLink`` up to the ``@odata.deltaLink``), then an
  incremental round with a changed and an ``@removed`` event.
* ``schedule.yaml``: ``getSchedule`` for two mailboxes and one that Graph
  does not know (a per-schedule error, not a failed call).
* ``write_update_delete.yaml``: a booking's event created (extended
  property lookup, then POST with ``transactionId``), read back, patched
  with ``If-Match``, deleted, and read back as gone.

The authority is not one of Microsoft's hosts, so msal is built with
``instance_discovery=False`` and asks nothing of
``login.microsoftonline.com`` (providers.md); the fake's address is
rewritten to :data:`BASE` in the cassettes, so the recorded
``@odata.nextLink``/``deltaLink`` stay below the replayed ``graph_url``.

Record anew with ``CALPOOL_RECORD_CASSETTES=1`` (the fake is then started).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import vcr

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector, RetryPolicy
from engine.core.model import Attendee, Interval
from engine.errors import NotFound
from engine.ports import CalendarRef, EventDraft
from tests.fakes.graph import GraphFake

CASSETTES = Path(__file__).parent / "cassettes"
RECORD = os.environ.get("CALPOOL_RECORD_CASSETTES") == "1"
BASE = "https://127.0.0.1:9"
"""The fake's address as the cassettes name it (nothing listens there)."""
SCRUBBED = "scrubbed"
PERSON = "cassette-person@contoso.example"
COLLEAGUE = "cassette-colleague@contoso.example"
UNKNOWN = "nobody@contoso.example"
WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
TENANT = "0f7a8e2c-5b1d-4c3e-9a6f-2d8b7c1e4a90"
CLIENT = "3c9b1d2e-7f4a-4e8b-a1c6-5d2f9e8b7a31"
SECRET_FIELDS = ("client_secret", "client_assertion")
"""Form fields of the token request that are credentials."""


def _utc(moment: str) -> dict[str, str]:
    return {"dateTime": moment, "timeZone": "UTC"}


def _populate(fake: GraphFake) -> None:
    """A person with a weekly series (in a Windows zone name, as Outlook
    writes), five meetings and a free lunch walk; a colleague with one."""
    fake.add_mailbox(PERSON, timezone="Europe/Berlin")
    fake.add_mailbox(COLLEAGUE, timezone="Europe/Berlin")
    berlin = "W. Europe Standard Time"
    fake.create(PERSON, {"subject": "standup", "showAs": "busy",
                         "start": {"dateTime": "2027-03-02T09:00:00", "timeZone": berlin},
                         "end": {"dateTime": "2027-03-02T09:15:00", "timeZone": berlin},
                         "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                                    "daysOfWeek": ["tuesday"]},
                                        "range": {"type": "numbered", "numberOfOccurrences": 3,
                                                  "startDate": "2027-03-02"}}})
    for day in (3, 4, 5, 8, 9):
        fake.create(PERSON, {"subject": f"meeting {day}", "showAs": "busy",
                             "start": _utc(f"2027-03-{day:02d}T12:00:00"),
                             "end": _utc(f"2027-03-{day:02d}T13:00:00")})
    fake.create(PERSON, {"subject": "lunch walk", "showAs": "free",
                         "start": _utc("2027-03-10T11:00:00"), "end": _utc("2027-03-10T12:00:00")})
    fake.create(COLLEAGUE, {"subject": "review", "showAs": "busy",
                            "start": _utc("2027-03-03T08:00:00"),
                            "end": _utc("2027-03-03T09:30:00")})


def _recorder(recorded_base: str) -> vcr.VCR:
    """vcrpy as the cassettes are kept: secrets scrubbed, the fake's
    address (``recorded_base``, its port differs per run) written as
    :data:`BASE` in URLs and bodies."""

    def scrub_request(request: Any) -> Any:
        request.uri = request.uri.replace(recorded_base, BASE)
        if request.path.endswith("/oauth2/v2.0/token") and request.body:
            form = parse_qs(request.body.decode(), keep_blank_values=True)
            kept = {key: SCRUBBED if key in SECRET_FIELDS else values[0]
                    for key, values in form.items()}
            request.body = urlencode(kept).encode()
        return request

    def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response["body"].get("string", b"")
        if not isinstance(body, bytes) or not body:
            return response
        text = body.decode().replace(recorded_base, BASE)
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict) and "access_token" in document:
            document["access_token"] = SCRUBBED
            text = json.dumps(document)
        response["body"]["string"] = text.encode()
        return response

    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORD else "none",
        match_on=["method", "path", "query"],
        filter_headers=["authorization"],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


@dataclass(frozen=True)
class Site:
    """The account the connector uses; while recording, the fake too."""

    account: MicrosoftAccount
    fake: GraphFake | None
    recorder: vcr.VCR


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """Recording: an account of a running fake with a few events.  Replay:
    an account of :data:`BASE`, where nothing listens, and no CA file (no
    TLS handshake happens: vcrpy answers every request)."""
    if not RECORD:
        yield Site(MicrosoftAccount(
            tenant_id=TENANT, client_id=CLIENT, client_secret=SCRUBBED, authority_url=BASE,
            graph_url=f"{BASE}/v1.0", timeout=5, page_size=3, retry=RetryPolicy(attempts=1)),
            None, _recorder(BASE))
        return
    with GraphFake(tenant_id=TENANT, client_id=CLIENT) as running:
        _populate(running)
        yield Site(MicrosoftAccount(
            tenant_id=TENANT, client_id=CLIENT, client_secret=running.client_secret,
            authority_url=running.authority_url, graph_url=running.graph_url,
            ca_file=running.ca_file, timeout=10, page_size=3, retry=RetryPolicy(attempts=1)),
            running, _recorder(running.authority_url))


def _behind_calpools_back(site: Site) -> tuple[str, str]:
    """While recording, change the person's calendar as Outlook would: one
    meeting moved, one deleted.  Returns their subjects."""
    moved, deleted = "meeting 4", "meeting 8"
    if site.fake is not None:
        by_subject = {e["subject"]: e["id"] for e in site.fake.events(PERSON)}
        site.fake.update(PERSON, by_subject[moved], {
            "start": _utc("2027-03-04T15:00:00"), "end": _utc("2027-03-04T16:00:00")})
        site.fake.delete(PERSON, by_subject[deleted])
    return moved, deleted


def test_a_paged_delta_listing_then_an_incremental_round(site: Site) -> None:
    calendar = CalendarRef(PERSON, "Europe/Berlin")
    with site.recorder.use_cassette("delta_paging.yaml") as cassette:
        connector = MicrosoftConnector(site.account)
        try:
            listing = connector.list_window(calendar, WINDOW)
            _behind_calpools_back(site)
            changes = connector.changes_since(calendar, listing.cursor, WINDOW)
        finally:
            connector.close()
        paths = [request.path for request in cassette.requests]
        assert RECORD or cassette.all_played  # the connector asked exactly what was recorded

    # msal's discovery and grant, then a delta round over several pages.
    assert paths[0].endswith(f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert paths[1].endswith(f"/{TENANT}/oauth2/v2.0/token")
    assert sum(p.endswith("/calendarView/delta") for p in paths) >= 3  # 8 events, pages of 3
    assert not any("login.microsoftonline.com" in r.uri for r in cassette.requests)

    assert listing.full
    instances = [i for group in listing.objects.values() for i in group]
    series = [group for group in listing.objects.values() if len(group) == 3]
    assert len(series) == 1
    # 09:00 Berlin (a Windows zone name on the wire) is 08:00 UTC in March.
    assert sorted(i.start for i in series[0]) == [
        datetime(2027, 3, day, 8, tzinfo=UTC) for day in (2, 9, 16)]
    singles = sorted((i.start, i.busy) for group in listing.objects.values()
                     if len(group) == 1 for i in group)
    assert singles == [(datetime(2027, 3, d, 12, tzinfo=UTC), True) for d in (3, 4, 5, 8, 9)] + [
        (datetime(2027, 3, 10, 11, tzinfo=UTC), False)]  # showAs free: not busy
    assert len(instances) == 9

    assert not changes.full
    gone = [source for source, group in changes.objects.items() if group == ()]
    moved = [group[0] for group in changes.objects.values() if group]
    assert len(gone) == 1 and gone[0] in listing.objects
    assert [(e.start, e.end) for e in moved] == [
        (datetime(2027, 3, 4, 15, tzinfo=UTC), datetime(2027, 3, 4, 16, tzinfo=UTC))]
    assert changes.cursor and changes.cursor != listing.cursor


def test_get_schedule_reports_an_unknown_mailbox_on_its_own(site: Site) -> None:
    calendars = [CalendarRef(PERSON, "Europe/Berlin"), CalendarRef(COLLEAGUE, "Europe/Berlin"),
                 CalendarRef(UNKNOWN)]
    day = Interval(datetime(2027, 3, 3, tzinfo=UTC), datetime(2027, 3, 4, tzinfo=UTC))
    with site.recorder.use_cassette("schedule.yaml") as cassette:
        connector = MicrosoftConnector(site.account)
        try:
            answer = connector.free_busy(calendars, day)
        finally:
            connector.close()
        posted = [r for r in cassette.requests if r.path.endswith("/getSchedule")]
        assert RECORD or cassette.all_played

    assert posted and all(r.method == "POST" for r in posted)
    assert answer.of(PERSON) == (Interval(datetime(2027, 3, 3, 12, tzinfo=UTC),
                                          datetime(2027, 3, 3, 13, tzinfo=UTC)),)
    assert answer.of(COLLEAGUE) == (Interval(datetime(2027, 3, 3, 8, tzinfo=UTC),
                                             datetime(2027, 3, 3, 9, 30, tzinfo=UTC)),)
    assert set(answer.errors) == {UNKNOWN}
    with pytest.raises(NotFound):
        answer.of(UNKNOWN)


def test_a_bookings_event_created_read_patched_and_deleted(site: Site) -> None:
    calendar = CalendarRef(PERSON, "Europe/Berlin")
    draft = EventDraft(booking_id="bk-cassette", title="Consultation",
                       start=datetime(2027, 3, 11, 14, tzinfo=UTC),
                       end=datetime(2027, 3, 11, 14, 30, tzinfo=UTC),
                       attendees=(Attendee("Carol", "carol@example.net"),), notify_attendee=False)
    later = EventDraft(booking_id="bk-cassette", title="Consultation",
                       start=datetime(2027, 3, 11, 16, tzinfo=UTC),
                       end=datetime(2027, 3, 11, 16, 30, tzinfo=UTC), sequence=1,
                       attendees=draft.attendees, notify_attendee=False)
    with site.recorder.use_cassette("write_update_delete.yaml") as cassette:
        connector = MicrosoftConnector(site.account)
        try:
            written = connector.create_event(calendar, draft)
            state = connector.read_event(calendar, "bk-cassette", source=written.source)
            patched = connector.update_event(calendar, later, etag=written.etag,
                                             source=written.source)
            connector.delete_event(calendar, "bk-cassette", source=written.source)
            gone = connector.read_event(calendar, "bk-cassette", source=written.source)
        finally:
            connector.close()
        sent = [(r.method, r) for r in cassette.requests if "/events" in r.path]
        assert RECORD or cassette.all_played

    posts = [r for method, r in sent if method == "POST"]
    assert len(posts) == 1
    body = json.loads(posts[0].body)
    assert body["transactionId"].startswith("calpool-")
    assert [p["value"] for p in body["singleValueExtendedProperties"]] == ["bk-cassette"]
    assert state is not None and state.start == draft.start and state.source == written.source
    (patch,) = [r for method, r in sent if method == "PATCH"]
    assert patch.headers.get("If-Match") == written.etag
    assert patched.source == written.source and patched.etag != written.etag
    assert [method for method, _ in sent].count("DELETE") == 1
    assert gone is None
