"""``POST /v1/bookings/{id}/reschedule`` on Radicale: the events move in
place, rooms are kept or swapped, refusals are problem documents.

Now is Thursday 2027-03-25 08:00 in Berlin; alice works 09:00-12:00; team
is an hour on a 30-minute grid with bob, one room of ``small`` (room-a,
room-b) and room-c of ``large``.
"""

from __future__ import annotations

import re
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
from tests.daemon.http.conftest import TOKENS, MakeSite, assert_problem
from tests.support.booking_copies import event_names
from tests.support.caldav_servers import Server

TEAM = {"event_type": "team", "start": SLOT, "attendee": ANN}
HALF_PAST = "2027-03-25T10:30:00+01:00"


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    return make_dav_site(make_site, radicale)


def booked(dav: DavSite, body: dict[str, Any] = TEAM) -> dict[str, Any]:
    response = dav.post(body)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    del document["manage_url"]  # only in the creating request's answer
    return document


def move(dav: DavSite, booking_id: str, start: Any, token: str | None = "desk") -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {TOKENS.get(token, token)}"}
    return dav.site.client.post(f"/v1/bookings/{booking_id}/reschedule", json={"start": start},
                                headers=headers)


def starts_on_server(dav: DavSite, key: str) -> list[tuple[str, str]]:
    """(name, DTSTART) of every event in ``key``'s calendar, read raw
    (calpool's copies named as ``uid_of`` their booking)."""
    status, _, body = dav.server.request(
        "PROPFIND", f"{dav.server.home}{dav.ids[key]}",
        b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
        {"Depth": "1", "Content-Type": "application/xml"})
    assert status == 207
    found = []
    for href in re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</", body.decode()):
        _, _, ics = dav.server.request("GET", dav.server.url.rstrip("/") + href)
        text = ics.decode()
        [name] = event_names(text, dav.ids[key])
        start = re.search(r"^DTSTART[^:\r\n]*:(.*?)\r?$", text, re.M)
        assert start
        found.append((name, start.group(1)))
    return sorted(found)


def test_an_overlapping_move_keeps_every_room_and_moves_every_event(dav: DavSite) -> None:
    booking = booked(dav)

    response = move(dav, booking["id"], HALF_PAST)

    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["start"], document["end"]) == (HALF_PAST, "2027-03-25T11:30:00+01:00")
    assert document["rooms"] == booking["rooms"] == {"small": "room-a", "large": "room-c"}
    assert document["status"] == "confirmed"
    assert document["history"][-1]["detail"] == (
        "rescheduled from 2027-03-25T10:00:00+01:00 to 2027-03-25T10:30:00+01:00")
    for key in ("alice", "bob", "room-a", "room-c"):
        assert starts_on_server(dav, key) == [(uid_of(booking["id"]), "20270325T093000Z")], key
    assert dav.get(f"/v1/bookings/{booking['id']}").json() == document


def test_a_move_to_where_the_room_is_busy_takes_the_other_room_of_the_pool(
    dav: DavSite
) -> None:
    first = booked(dav, {"event_type": "consult", "start": SLOT, "attendee": ANN})
    room = first["rooms"]["small"]
    [other] = {"room-a", "room-b"} - {room}
    # A meeting in the room at 11:30 Berlin, as the last sync saw it.
    dav.site.busy(room, ("2027-03-25T10:30:00+00:00", "2027-03-25T11:00:00+00:00"))

    response = move(dav, first["id"], "2027-03-25T11:30:00+01:00")

    assert response.status_code == 200, response.text
    assert response.json()["rooms"] == {"small": other}
    assert dav.uids(room) == []
    assert starts_on_server(dav, other) == [(uid_of(first["id"]), "20270325T103000Z")]
    assert starts_on_server(dav, "alice") == [(uid_of(first["id"]), "20270325T103000Z")]
    assert response.json()["history"][-1]["detail"].endswith(f"small: {other} instead of {room}")


@pytest.mark.parametrize(("start", "reason"), [
    ("2027-03-25T13:00:00+01:00", "outside_hours"),
    ("2027-03-24T10:00:00+01:00", "past"),
])
def test_an_unbookable_start_is_409_with_the_reason(dav: DavSite, start: str, reason: str) -> None:
    booking = booked(dav)

    document = assert_problem(move(dav, booking["id"], start), 409, "/problems/slot-unavailable")

    assert document["reason"] == reason
    assert dav.get(f"/v1/bookings/{booking['id']}").json() == booking


def test_a_cancelled_booking_is_not_reschedulable(dav: DavSite) -> None:
    booking = booked(dav)
    assert dav.delete(f"/v1/bookings/{booking['id']}").status_code == 200

    document = assert_problem(move(dav, booking["id"], HALF_PAST), 409,
                              "/problems/booking-not-reschedulable")

    assert "cancelled" in document["detail"]
    assert dav.uids("alice") == []


@pytest.mark.parametrize(("body", "field"), [
    ({"start": "2027-03-25T10:10:00+01:00"}, "start"),  # off the 30-minute grid
    ({"start": "next week"}, "start"),
    ({}, "start"),
    ({"start": HALF_PAST, "rooms": {}}, "rooms"),
])
def test_malformed_requests_are_422(dav: DavSite, body: dict[str, Any], field: str) -> None:
    booking = booked(dav)
    response = dav.site.client.post(f"/v1/bookings/{booking['id']}/reschedule", json=body,
                                    headers={"Authorization": f"Bearer {TOKENS['desk']}"})

    document = assert_problem(response, 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == [field]


def test_unknown_bookings_and_auth(dav: DavSite) -> None:
    assert_problem(move(dav, "no-such-booking", HALF_PAST), 404, "/problems/booking-not-found")
    assert_problem(move(dav, "no-such-booking", HALF_PAST, token=None), 401,
                   "/problems/unauthorized")
    assert_problem(move(dav, "no-such-booking", HALF_PAST, token="website"), 403,
                   "/problems/forbidden")


def test_openapi_documents_the_reschedule_route(dav: DavSite) -> None:
    document = dav.site.client.get("/openapi.json").json()
    responses = document["paths"]["/v1/bookings/{booking_id}/reschedule"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(responses)
    assert "/problems/booking-not-reschedulable" in document["info"]["description"]
