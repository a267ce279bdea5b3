"""``POST/GET/DELETE /v1/bookings`` on Radicale: status codes, problem
documents, the auth matrix, list filters, cancellation and the OpenAPI
schema of the booking document.

Now is Thursday 2027-03-25 08:00 in Berlin; alice works 09:00-12:00; consult
is 30 minutes with one room of ``small`` (room-a, room-b); team is an hour
on a 30-minute grid with bob, one room of ``small`` and room-c of ``large``.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.services.links import token_digest
from tests.daemon.http.bookings_site import (
    ANN,
    SLOT,
    DavSite,
    down_room_config,
    make_dav_site,
    radicale,  # noqa: F401 (a fixture)
    uid_of,
)
from tests.daemon.http.conftest import NOW, MakeSite, assert_problem
from tests.support.caldav_servers import Server

CONSULT = {"event_type": "consult", "start": SLOT, "attendee": ANN}


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    return make_dav_site(make_site, radicale)


def booked(dav: DavSite, **changes: Any) -> dict[str, Any]:
    response = dav.post({**CONSULT, **changes})
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def test_booking_is_confirmed_written_once_per_calendar_in_the_owners_zone(dav: DavSite) -> None:
    response = dav.post({**CONSULT, "start": "2027-03-25T09:00:00Z", "notes": "2nd floor"})

    assert response.status_code == 201, response.text
    document = response.json()
    assert response.headers["location"] == f"/v1/bookings/{document['id']}"
    assert document == {
        "id": document["id"], "status": "confirmed", "event_type": "consult",
        "start": "2027-03-25T10:00:00+01:00", "end": "2027-03-25T10:30:00+01:00",
        "owner": "alice", "with": [], "rooms": {"small": "room-a"}, "attendee": ANN,
        "notes": "2nd floor", "history": document["history"],
        "deliveries": document["deliveries"], "manage_url": document["manage_url"],
    }
    assert [entry["status"] for entry in document["history"]] == ["pending", "confirmed"]
    assert [(d["calendar"], d["how"], d["state"]) for d in document["deliveries"]] == [
        ("alice", "written", "written"), ("room-a", "written", "written")]
    assert dav.uids("alice") == dav.uids("room-a") == [uid_of(document["id"])]
    assert dav.uids("room-b") == []
    # manage_url is in the answer to the creating request only.
    assert dav.get(response.headers["location"]).json() == {
        key: value for key, value in document.items() if key != "manage_url"}


def test_booking_answer_carries_a_manage_url_whose_token_is_stored_as_a_digest(
        dav: DavSite) -> None:
    document = booked(dav)
    prefix = "http://127.0.0.1:8740/manage/"
    assert document["manage_url"].startswith(prefix)
    token = document["manage_url"][len(prefix):]
    assert len(token) == 43
    with dav.app.store.reader() as uow:
        assert uow.manage_tokens.booking_of(token_digest(token)) == document["id"]
        assert uow.manage_tokens.booking_of(token) is None
    assert dav.app.manage.open(token, NOW).booking.id == document["id"]


def test_a_start_without_offset_is_read_in_the_owners_zone(dav: DavSite) -> None:
    assert booked(dav, start="2027-03-25T11:30")["start"] == "2027-03-25T11:30:00+01:00"


def test_team_booking_assigns_one_room_per_pool(dav: DavSite) -> None:
    document = booked(dav, event_type="team", start="2027-03-25T10:30:00+01:00")
    assert document["with"] == ["bob"]
    assert document["rooms"] == {"small": "room-a", "large": "room-c"}
    for key in ("alice", "bob", "room-a", "room-c"):
        assert dav.uids(key) == [uid_of(document["id"])], key


@pytest.mark.parametrize(("start", "reason"), [
    ("2027-03-24T10:00:00+01:00", "past"),
    ("2027-03-25T13:00:00+01:00", "outside_hours"),
    ("2027-06-01T10:00:00+02:00", "horizon"),
])
def test_unbookable_starts_are_409_with_the_reason(dav: DavSite, start: str, reason: str) -> None:
    document = assert_problem(dav.post({**CONSULT, "start": start}), 409,
                              "/problems/slot-unavailable")
    assert document["reason"] == reason


def test_taken_slot_names_the_busy_owner_then_a_full_pool(dav: DavSite) -> None:
    booked(dav)
    document = assert_problem(dav.post(CONSULT), 409, "/problems/slot-unavailable")
    assert document["reason"] == "owner_busy"
    # At 09:00 alice is free but the large pool's only room is busy.
    dav.site.busy("room-c", ("2027-03-25T08:00:00+00:00", "2027-03-25T08:30:00+00:00"))
    document = assert_problem(dav.post({**CONSULT, "event_type": "team",
                                        "start": "2027-03-25T09:00:00+01:00"}), 409,
                              "/problems/slot-unavailable")
    assert document["reason"] == "no_room"


@pytest.mark.parametrize(("body", "name"), [
    ({**CONSULT, "start": "2027-03-25T10:10:00+01:00"}, "start"),  # off the 30-minute grid
    ({**CONSULT, "start": "next tuesday"}, "start"),
    ({**CONSULT, "event_type": "massage"}, "event_type"),
    ({**CONSULT, "attendee": {"name": "Ann", "email": "not-an-address"}}, "attendee.email"),
    ({**CONSULT, "attendee": {"name": "  ", "email": "ann@example.com"}}, "attendee.name"),
    ({**CONSULT, "attendee": {"name": "Ann"}}, "attendee.email"),
    ({**CONSULT, "room": "room-b"}, "room"),
    ({"event_type": "consult", "attendee": ANN}, "start"),
    ({**CONSULT, "notes": 42}, "notes"),
])
def test_malformed_bodies_are_422_naming_the_field(dav: DavSite, body: dict[str, Any],
                                                  name: str) -> None:
    document = assert_problem(dav.post(body), 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == [name]
    assert document["errors"][0]["in"] == "body"
    assert dav.uids("alice") == []


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"consult"'])
def test_a_body_that_is_not_a_json_object_is_422(dav: DavSite, body: bytes) -> None:
    assert_problem(dav.post(body, headers={"Content-Type": "application/json"}), 422,
                   "/problems/validation")


@pytest.mark.parametrize(("method", "url"), [
    ("post", "/v1/bookings"), ("get", "/v1/bookings"), ("get", "/v1/bookings/x"),
    ("delete", "/v1/bookings/x"),
])
@pytest.mark.parametrize(("token", "status"), [
    (None, 401), ("not-a-configured-token", 401), ("website", 403), ("reports", 403),
    ("ops", 403),
])
def test_every_booking_route_needs_the_book_scope(dav: DavSite, method: str, url: str,
                                                 token: str | None, status: int) -> None:
    if method == "post":
        response = dav.post(CONSULT, token=token)
    elif method == "get":
        response = dav.get(url, token=token)
    else:
        response = dav.delete(url, token=token)
    kind = "/problems/unauthorized" if status == 401 else "/problems/forbidden"
    assert_problem(response, status, kind)
    assert dav.uids("alice") == []


def test_unknown_booking_is_404(dav: DavSite) -> None:
    for response in (dav.get("/v1/bookings/nope"), dav.delete("/v1/bookings/nope")):
        document = assert_problem(response, 404, "/problems/booking-not-found")
        assert document["booking_id"] == "nope"


def test_cancel_removes_the_events_and_is_idempotent(dav: DavSite) -> None:
    document = booked(dav)
    url = f"/v1/bookings/{document['id']}"

    first = dav.delete(url)
    second = dav.delete(url)

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled"
    assert [entry["status"] for entry in first.json()["history"]] == [
        "pending", "confirmed", "cancelled"]
    assert second.status_code == 200 and second.json() == first.json()
    assert dav.uids("alice") == dav.uids("room-a") == []
    # The slot is free again.
    assert dav.post(CONSULT).status_code == 201


def test_a_failed_booking_is_502_and_cannot_be_cancelled(make_site: MakeSite,
                                                       radicale: Server) -> None:  # noqa: F811
    dav = make_dav_site(make_site, radicale)
    # room-a's calendar was never made on the server: its write fails for good.
    site = make_site(dav.site.app.config.path.read_text().replace(
        f'id = "{dav.ids["room-a"]}"', 'id = "never-made/"'))
    dav = DavSite(site, radicale, dav.ids)

    document = assert_problem(dav.post(CONSULT), 502, "/problems/booking-failed")

    failed = document["booking"]
    assert failed["status"] == "failed" and failed["rooms"] == {"small": "room-a"}
    assert document["detail"].startswith(f"booking {failed['id']} failed: ")
    assert dav.uids("alice") == []  # compensated
    cancel = assert_problem(dav.delete(f"/v1/bookings/{failed['id']}"), 409,
                            "/problems/booking-not-cancellable")
    assert cancel["booking_id"] == failed["id"]


def test_writes_not_done_within_confirm_within_answer_202_pending(
        make_site: MakeSite, radicale: Server) -> None:  # noqa: F811
    dav = make_dav_site(make_site, radicale)
    dav = DavSite(make_site(down_room_config(dav).text()), radicale, dav.ids)

    response = dav.post({**CONSULT, "event_type": "team"})

    assert response.status_code == 202, response.text
    document = response.json()
    assert document["status"] == "pending"
    assert response.headers["location"] == f"/v1/bookings/{document['id']}"
    assert dav.get(response.headers["location"]).json()["status"] == "pending"
    # Reserved: the slot is taken from now on.
    assert dav.post(CONSULT).json()["reason"] == "owner_busy"


def test_live_recheck_that_cannot_reach_a_provider_is_503(make_site: MakeSite,
                                                         radicale: Server) -> None:  # noqa: F811
    dav = make_dav_site(make_site, radicale)
    dav = DavSite(make_site(down_room_config(dav, live_recheck=True).text()), radicale, dav.ids)

    response = dav.post({**CONSULT, "event_type": "team"})

    assert_problem(response, 503, "/problems/provider-unavailable")
    assert response.headers["retry-after"]
    assert dav.get("/v1/bookings").json() == {"bookings": []}


def test_list_filters_by_range_calendar_and_status(dav: DavSite) -> None:
    early = booked(dav, start="2027-03-25T09:00:00+01:00")
    team = booked(dav, event_type="team", start="2027-03-25T10:00:00+01:00")
    late = booked(dav, start="2027-03-26T11:00:00+01:00")
    dav.delete(f"/v1/bookings/{late['id']}")

    def ids(**params: Any) -> list[str]:
        response = dav.get("/v1/bookings", params=params)
        assert response.status_code == 200, response.text
        return [document["id"] for document in response.json()["bookings"]]

    assert ids() == [early["id"], team["id"], late["id"]]
    assert ids(start="2027-03-25T09:30", end="2027-03-26") == [team["id"]]
    assert ids(end="2027-03-25T09:30:00+01:00") == [early["id"]]
    assert ids(start="2027-03-26") == [late["id"]]
    assert ids(calendar="room-c") == [team["id"]]
    assert ids(calendar="bob") == [team["id"]]
    assert ids(status="cancelled") == [late["id"]]
    assert ids(status=["confirmed", "pending"]) == [early["id"], team["id"]]
    assert ids(status="cancelled,confirmed") == [early["id"], team["id"], late["id"]]


@pytest.mark.parametrize(("params", "names"), [
    ({"start": "soon"}, ["start"]),
    ({"start": "2027-03-26", "end": "2027-03-25"}, ["end"]),
    ({"calendar": "room-z"}, ["calendar"]),
    ({"status": "done"}, ["status"]),
    ({"start": "x", "status": "done"}, ["start", "status"]),
])
def test_bad_list_parameters_are_422(dav: DavSite, params: dict[str, str],
                                     names: list[str]) -> None:
    document = assert_problem(dav.get("/v1/bookings", params=params), 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == names


def schema_validator(dav: DavSite, path: str, method: str, status: str) -> Draft202012Validator:
    openapi = dav.get("/openapi.json", token=None).json()
    content = openapi["paths"][path][method]["responses"][status]["content"]
    schema = next(iter(content.values()))["schema"]
    return Draft202012Validator({**schema, "components": openapi["components"]})


def test_answers_match_the_openapi_document(dav: DavSite) -> None:
    document = booked(dav)
    path = "/v1/bookings/{booking_id}"
    schema_validator(dav, "/v1/bookings", "post", "201").validate(document)
    schema_validator(dav, "/v1/bookings", "post", "202").validate(document)
    schema_validator(dav, path, "get", "200").validate(dav.get(f"/v1/bookings/{document['id']}")
                                                       .json())
    schema_validator(dav, "/v1/bookings", "get", "200").validate(dav.get("/v1/bookings").json())
    cancelled = dav.delete(f"/v1/bookings/{document['id']}").json()
    schema_validator(dav, path, "delete", "200").validate(cancelled)
    taken = dav.post({**CONSULT, "start": "2027-03-24T10:00:00+01:00"}).json()
    schema_validator(dav, "/v1/bookings", "post", "409").validate(taken)


def test_openapi_documents_the_body_and_every_problem_type(dav: DavSite) -> None:
    openapi = dav.get("/openapi.json", token=None).json()
    post = openapi["paths"]["/v1/bookings"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["event_type", "start", "attendee"]
    assert body["additionalProperties"] is False
    assert body["properties"]["attendee"]["required"] == ["name", "email"]
    Draft202012Validator(body).validate(CONSULT)
    assert "$defs" not in str(body)
    assert {"201", "202", "401", "403", "409", "422", "502", "503"} <= post["responses"].keys()
    assert "/problems/idempotency-key-in-flight" in post["responses"]["409"]["description"]
    assert "/problems/slot-unavailable" in post["responses"]["409"]["description"]
    assert "/problems/idempotency-key-reused" in post["responses"]["422"]["description"]
    assert post["responses"]["409"]["content"].keys() == {"application/problem+json"}
    for kind in ("slot-unavailable", "booking-not-found", "booking-not-cancellable",
                 "idempotency-key-reused", "idempotency-key-in-flight", "provider-unavailable",
                 "booking-failed"):
        assert f"/problems/{kind}" in openapi["info"]["description"]
