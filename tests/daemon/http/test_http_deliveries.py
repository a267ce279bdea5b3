"""Delivery records on Radicale (issue 15): one row per written copy with
the href and etag the server gave; a move updates each copy at its recorded
href, conditional on its recorded etag; a cancel deletes at the recorded
href.  The booking document shows them as ``deliveries``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.daemon.http.bookings_site import (
    ANN,
    SLOT,
    DavSite,
    make_dav_site,
    radicale,  # noqa: F401 (a fixture)
    uid_of,
)
from tests.daemon.http.conftest import TOKENS, MakeSite
from tests.support.caldav_servers import Server

CONSULT = {"event_type": "consult", "start": SLOT, "attendee": ANN}


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    return make_dav_site(make_site, radicale)


def records(dav: DavSite, booking_id: str) -> dict[str, Any]:
    return {record.calendar: record for record in dav.app.bookings.deliveries(booking_id)}


def raw(dav: DavSite, href: str) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = dav.server.request("GET", dav.server.url.rstrip("/") + href)
    return status, {k.lower(): v for k, v in dict(headers).items()}, body


def test_every_write_has_a_delivery_row_with_the_servers_href_and_etag(dav: DavSite) -> None:
    response = dav.post(CONSULT)
    assert response.status_code == 201, response.text
    document = response.json()

    assert [(d["calendar"], d["how"], d["state"]) for d in document["deliveries"]] == [
        ("alice", "written", "written"), ("room-a", "written", "written")]
    found = records(dav, document["id"])
    for key in ("alice", "room-a"):
        record = found[key]
        assert record.source.endswith(".ics") and dav.ids[key] in record.source
        status, headers, _ = raw(dav, record.source)
        assert status == 200
        assert headers.get("etag") == record.etag and record.etag
    assert dav.get(f"/v1/bookings/{document['id']}").json()["deliveries"] == document["deliveries"]


def test_a_move_updates_at_the_recorded_href_and_a_cancel_deletes_there(dav: DavSite) -> None:
    document = dav.post(CONSULT).json()
    before = records(dav, document["id"])
    # Someone edits the owner's copy behind calpool's back: its etag moves,
    # so calpool's conditional update meets 412, reads the copy again at
    # its recorded href and replaces that version — still one event.
    href = before["alice"].source
    _, _, body = raw(dav, href)
    edited = body.replace(b"SUMMARY:", b"SUMMARY:edited ")
    assert dav.server.request("PUT", dav.server.url.rstrip("/") + href, edited,
                              {"Content-Type": "text/calendar"})[0] in (200, 201, 204)

    moved = dav.site.client.post(
        f"/v1/bookings/{document['id']}/reschedule", json={"start": "2027-03-25T10:30:00Z"},
        headers={"Authorization": f"Bearer {TOKENS['desk']}"})
    assert moved.status_code == 200, moved.text

    after = records(dav, document["id"])
    for key in ("alice", "room-a"):
        assert after[key].source == before[key].source  # in place, same href
        assert after[key].etag != before[key].etag
        assert after[key].sequence == 1
        status, headers, body = raw(dav, after[key].source)
        assert status == 200 and headers.get("etag") == after[key].etag
        assert b"SEQUENCE:1" in body and b"edited" not in body
    assert dav.uids("alice") == dav.uids("room-a") == [uid_of(document["id"])]

    cancelled = dav.delete(f"/v1/bookings/{document['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert [(d["calendar"], d["state"]) for d in cancelled.json()["deliveries"]] == [
        ("alice", "removed"), ("room-a", "removed")]
    for key in ("alice", "room-a"):
        assert raw(dav, after[key].source)[0] == 404
    assert dav.uids("alice") == dav.uids("room-a") == []

