"""``/v1/links`` on Radicale: admin routes and their auth, the link's slots
and its one booking authorised by the token alone, races over a real
socket, expiry, revocation, prefilled attendees and the link given back
after a failed booking.

Now is Thursday 2027-03-25 08:00 in Berlin; alice works 09:00-12:00;
consult is 30 minutes with one room of ``small`` (room-a, room-b).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from daemon.http.server import HttpServer
from engine.services.links import token_digest
from tests.daemon.http.bookings_site import (
    ANN,
    SLOT,
    DavSite,
    make_dav_site,
    radicale,  # noqa: F401 (a fixture)
    uid_of,
)
from tests.daemon.http.conftest import NOW, TOKENS, MakeSite, assert_problem
from tests.support.caldav_servers import Server

BEA = {"name": "Bea Prefilled", "email": "bea@example.com"}


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    return make_dav_site(make_site, radicale)


def admin(token: str | None = "ops") -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {TOKENS.get(token, token)}"}


def create(dav: DavSite, body: dict[str, Any] | None = None, token: str | None = "ops") -> Any:
    return dav.site.client.post("/v1/links", json=body or {"event_type": "consult"},
                                headers=admin(token))


def new_link(dav: DavSite, **body: Any) -> str:
    response = create(dav, {"event_type": "consult", **body})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def book(dav: DavSite, token: str, body: dict[str, Any] | None = None) -> Any:
    return dav.site.client.post(f"/v1/links/{token}/bookings",
                                json={"start": SLOT, "attendee": ANN} if body is None else body)


def test_create_answers_the_token_once_with_its_url_and_expiry(dav: DavSite) -> None:
    response = create(dav, {"event_type": "consult", "expires_in": "2h", "attendee": BEA})

    assert response.status_code == 201, response.text
    document = response.json()
    token = document["token"]
    assert document == {
        "id": token_digest(token), "token": token,
        "url": f"http://127.0.0.1:8740/book/{token}", "event_type": "consult",
        "expires_at": "2027-03-25T10:00:00+01:00", "attendee": BEA,
    }
    assert len(token) >= 43
    default = create(dav).json()
    assert default["expires_at"] == "2027-04-01T09:00:00+02:00"  # 7 days of 24h, across DST
    assert default["attendee"] is None


def test_the_url_uses_the_configured_public_url(make_site: MakeSite, radicale: Server) -> None:  # noqa: F811
    dav = make_dav_site(make_site, radicale)
    text = dav.site.app.config.path.read_text().replace(
        "[http]\n", '[http]\npublic_url = "https://book.example.com/calpool/"\n')
    dav = DavSite(make_site(text), radicale, dav.ids)

    document = create(dav).json()

    assert document["url"] == f"https://book.example.com/calpool/book/{document['token']}"


@pytest.mark.parametrize(("token", "status", "type_"), [
    (None, 401, "/problems/unauthorized"),
    ("not-a-configured-token", 401, "/problems/unauthorized"),
    ("desk", 403, "/problems/forbidden"),  # slots and book, no admin
])
def test_admin_routes_need_the_admin_scope(dav: DavSite, token: str | None, status: int,
                                           type_: str) -> None:
    client = dav.site.client
    assert_problem(create(dav, token=token), status, type_)
    assert_problem(client.get("/v1/links", headers=admin(token)), status, type_)
    assert_problem(client.delete("/v1/links/whatever", headers=admin(token)), status, type_)


@pytest.mark.parametrize(("body", "field"), [
    ({"event_type": "nope"}, "event_type"),
    ({"event_type": "consult", "expires_in": "a week"}, "expires_in"),
    ({"event_type": "consult", "expires_in": "0s"}, "expires_in"),
    ({"event_type": "consult", "attendee": {"name": "Bea", "email": "no address"}},
     "attendee.email"),
    ({"event_type": "consult", "colour": "red"}, "colour"),
])
def test_malformed_link_requests_are_422_naming_the_field(dav: DavSite, body: dict[str, Any],
                                                          field: str) -> None:
    document = assert_problem(create(dav, body), 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == [field]
    assert dav.site.client.get("/v1/links", headers=admin()).json() == {"links": []}


def test_list_shows_unused_links_and_revoke_by_token_or_id(dav: DavSite) -> None:
    client = dav.site.client
    first, second, third = (new_link(dav) for _ in range(3))
    assert book(dav, third).status_code == 201

    listed = client.get("/v1/links", headers=admin()).json()["links"]

    assert sorted(link["id"] for link in listed) == sorted(map(token_digest, (first, second)))
    assert listed[0] == {"id": listed[0]["id"], "event_type": "consult",
                         "created_at": "2027-03-25T08:00:00+01:00",
                         "expires_at": "2027-04-01T09:00:00+02:00", "attendee": None}
    assert client.delete(f"/v1/links/{first}", headers=admin()).status_code == 204
    assert client.delete(f"/v1/links/{first}", headers=admin()).status_code == 204  # idempotent
    assert client.delete(f"/v1/links/{token_digest(second)}", headers=admin()).status_code == 204
    assert client.get("/v1/links", headers=admin()).json() == {"links": []}
    assert_problem(client.delete(f"/v1/links/{third}", headers=admin()), 410, "/problems/link-used")
    assert_problem(client.delete("/v1/links/unknown", headers=admin()), 404,
                   "/problems/link-not-found")
    for revoked in (first, second):
        assert_problem(dav.site.client.get(f"/v1/links/{revoked}/slots"), 410,
                       "/problems/link-expired")
        assert_problem(book(dav, revoked), 410, "/problems/link-expired")


def test_link_slots_are_the_event_types_slots_without_a_bearer_token(dav: DavSite) -> None:
    token = new_link(dav)
    query = "?start=2027-03-25&end=2027-03-27&timezone=UTC"

    response = dav.site.client.get(f"/v1/links/{token}/slots{query}")

    assert response.status_code == 200, response.text
    expected = dav.site.get(f"/v1/event-types/consult/slots{query}", token="website")
    assert response.json() == expected.json()
    assert response.json()["slots"][0]["start"] == "2027-03-25T08:00:00+00:00"
    assert_problem(dav.site.client.get(f"/v1/links/{token}/slots?timezone=Mars/Olympus"), 422,
                   "/problems/validation")


def test_the_first_booking_uses_the_link_and_later_uses_are_410(dav: DavSite) -> None:
    token = new_link(dav)

    response = book(dav, token, {"start": SLOT, "attendee": ANN, "notes": "by link"})

    assert response.status_code == 201, response.text
    document = response.json()
    assert (document["status"], document["start"], document["attendee"], document["notes"]) == (
        "confirmed", SLOT, ANN, "by link")
    assert dav.uids("alice") == dav.uids("room-a") == [uid_of(document["id"])]
    assert_problem(book(dav, token, {"start": "2027-03-25T11:00:00+01:00", "attendee": ANN}),
                   410, "/problems/link-used")
    assert_problem(dav.site.client.get(f"/v1/links/{token}/slots"), 410, "/problems/link-used")
    assert dav.uids("alice") == [uid_of(document["id"])]


def test_an_unknown_token_is_404_revealing_nothing(dav: DavSite) -> None:
    guess = "A" * 43
    for response in (book(dav, guess), dav.site.client.get(f"/v1/links/{guess}/slots")):
        document = assert_problem(response, 404, "/problems/link-not-found")
        assert guess not in response.text
        assert set(document) == {"type", "title", "status", "detail"}


def test_an_expired_link_is_410(dav: DavSite) -> None:
    token = new_link(dav, expires_in="1h")
    dav.site.clock[0] = NOW + timedelta(hours=1)

    assert_problem(book(dav, token), 410, "/problems/link-expired")
    assert_problem(dav.site.client.get(f"/v1/links/{token}/slots"), 410, "/problems/link-expired")
    assert dav.uids("alice") == []


def test_prefilled_links_refuse_an_attendee_and_plain_links_need_one(dav: DavSite) -> None:
    prefilled = new_link(dav, attendee=BEA)
    plain = new_link(dav)

    refused = assert_problem(book(dav, prefilled), 422, "/problems/validation")
    assert [error["name"] for error in refused["errors"]] == ["attendee"]
    missing = assert_problem(book(dav, plain, {"start": SLOT}), 422, "/problems/validation")
    assert [error["name"] for error in missing["errors"]] == ["attendee"]
    off_grid = assert_problem(book(dav, plain, {"start": "2027-03-25T10:10:00+01:00",
                                                "attendee": ANN}), 422, "/problems/validation")
    assert [error["name"] for error in off_grid["errors"]] == ["start"]

    response = book(dav, prefilled, {"start": SLOT})
    assert response.status_code == 201, response.text
    assert response.json()["attendee"] == BEA
    # Refusals left the plain link unused.
    assert book(dav, plain, {"start": "2027-03-25T11:00:00+01:00", "attendee": ANN}
                ).status_code == 201


def test_a_failed_booking_is_502_and_gives_the_link_back(make_site: MakeSite,
                                                        radicale: Server) -> None:  # noqa: F811
    """Both rooms of ``small`` live in collections the server does not
    have: every room write fails, so the booking fails."""
    dav = make_dav_site(make_site, radicale)
    text = dav.site.app.config.path.read_text()
    for key in ("room-a", "room-b"):
        text = text.replace(f'id = "{dav.ids[key]}"', f'id = "missing-{key}/"')
    broken = DavSite(make_site(text), radicale, dav.ids)
    token = new_link(broken)

    failed = assert_problem(book(broken, token), 502, "/problems/booking-failed")

    assert failed["booking"]["status"] == "failed"
    assert broken.uids("alice") == []
    assert broken.site.client.get(f"/v1/links/{token}/slots").status_code == 200
    assert broken.site.client.get("/v1/links", headers=admin()).json()["links"][0]["id"] == (
        token_digest(token))


# ---- races over a real socket -----------------------------------------------------------------


@pytest.fixture
def served(dav: DavSite) -> Iterator[tuple[DavSite, str]]:
    server = HttpServer(dav.site.api, host="127.0.0.1", port=0)
    server.start()
    yield dav, server.url
    server.stop()


def test_twenty_requests_on_one_link_at_once_book_once(served: tuple[DavSite, str]) -> None:
    dav, url = served
    token = new_link(dav)
    starts = [SLOT] * 10 + ["2027-03-25T11:00:00+01:00"] * 10
    bodies = [{"start": start, "attendee": {"name": f"Guest {n}", "email": f"g{n}@example.com"}}
              for n, start in enumerate(starts)]

    with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(
            lambda body: client.post(f"/v1/links/{token}/bookings", json=body), bodies))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [410] * 19, [a.text for a in answers if a.status_code != 410]
    assert {a.json()["type"] for a in answers if a.status_code == 410} == {"/problems/link-used"}
    [winner] = [answer.json() for answer in answers if answer.status_code == 201]
    assert dav.uids("alice") == [uid_of(winner["id"])]
    assert len(dav.get("/v1/bookings").json()["bookings"]) == 1
    assert datetime.fromisoformat(winner["start"]) in {datetime.fromisoformat(s) for s in starts}


def test_openapi_documents_the_link_routes_and_problems(dav: DavSite) -> None:
    document = dav.site.client.get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/v1/links"]) == {"get", "post"}
    assert set(paths["/v1/links/{token}"]) == {"delete"}
    assert "410" in paths["/v1/links/{token}/bookings"]["post"]["responses"]
    assert "security" not in paths["/v1/links/{token}/slots"]["get"]
    for type_ in ("/problems/link-used", "/problems/link-expired", "/problems/link-not-found"):
        assert type_ in document["info"]["description"]
