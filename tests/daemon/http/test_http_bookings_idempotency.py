"""``Idempotency-Key`` on ``POST /v1/bookings``, and races through a real
``HttpServer``: parallel requests for one slot, or with one key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from daemon.http.server import HttpServer
from engine.core.model import Attendee
from engine.services.idempotency import IdempotencyKeys, request_fingerprint
from engine.store import IdempotencyState
from tests.daemon.http.bookings_site import (
    ANN,
    SLOT,
    DavSite,
    dav_config,
    down_room_config,
    make_dav_site,
    radicale,  # noqa: F401 (a fixture)
    uid_of,
)
from tests.daemon.http.conftest import TOKENS, MakeSite, assert_problem
from tests.support.caldav_servers import Server

CONSULT = {"event_type": "consult", "start": SLOT, "attendee": ANN}
KIOSK = "kiosk-token-also-with-book"


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    config, ids = dav_config(radicale)
    config.api_token("kiosk", sha256=hashlib.sha256(KIOSK.encode()).hexdigest(), scopes=["book"])
    return DavSite(make_site(config.text()), radicale, ids)


def keys_of(dav: DavSite) -> IdempotencyKeys:
    return IdempotencyKeys(dav.app.store, clock=dav.app.clock, abandon_after=timedelta(minutes=2))


def test_same_key_same_body_replays_the_first_answer_even_after_a_change(dav: DavSite) -> None:
    first = dav.post(CONSULT, key="k-1")
    assert first.status_code == 201, first.text
    dav.delete(first.headers["location"])

    # Same content, other key order and spacing: the same request.
    again = dav.post(b'{"start": "%s",  "attendee": {"email": "ann@example.com", '
                     b'"name": "Ann Example"}, "event_type": "consult"}' % SLOT.encode(),
                     key="k-1", headers={"Content-Type": "application/json"})

    assert again.status_code == 201
    assert again.content == first.content  # "confirmed", as first sent
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(dav.get("/v1/bookings").json()["bookings"]) == 1
    assert dav.uids("alice") == []


def test_same_key_with_another_body_is_422(dav: DavSite) -> None:
    assert dav.post(CONSULT, key="k-2").status_code == 201
    other = dav.post({**CONSULT, "notes": "a different request"}, key="k-2")
    assert_problem(other, 422, "/problems/idempotency-key-reused")
    assert len(dav.get("/v1/bookings").json()["bookings"]) == 1


def test_refusals_are_stored_so_a_replay_stays_a_refusal(dav: DavSite) -> None:
    blocker = dav.post(CONSULT).json()
    refused = dav.post({**CONSULT, "attendee": {"name": "Bo", "email": "bo@example.com"}},
                       key="k-3")
    assert_problem(refused, 409, "/problems/slot-unavailable")
    dav.delete(f"/v1/bookings/{blocker['id']}")  # the slot is free now

    replay = dav.post({**CONSULT, "attendee": {"name": "Bo", "email": "bo@example.com"}},
                      key="k-3")

    assert replay.status_code == 409 and replay.content == refused.content
    assert replay.headers["content-type"] == "application/problem+json"
    malformed = dav.post({**CONSULT, "extra": 1}, key="k-4")
    assert_problem(malformed, 422, "/problems/validation")
    assert dav.post({**CONSULT, "extra": 1}, key="k-4").content == malformed.content


def test_keys_are_scoped_to_the_token(dav: DavSite) -> None:
    desk = dav.post(CONSULT, key="shared")
    kiosk = dav.post({**CONSULT, "start": "2027-03-25T11:00:00+01:00"}, token=KIOSK,
                     key="shared")
    assert desk.status_code == kiosk.status_code == 201
    assert desk.json()["id"] != kiosk.json()["id"]


def test_a_key_whose_first_request_still_runs_is_409(dav: DavSite) -> None:
    fingerprint = request_fingerprint("POST", "/v1/bookings", b'{"any": "body"}')
    assert keys_of(dav).begin("desk", "k-5", fingerprint).state is IdempotencyState.NEW

    response = dav.post({"any": "body"}, key="k-5")

    assert_problem(response, 409, "/problems/idempotency-key-in-flight")
    assert response.headers["retry-after"] == "1"
    assert dav.get("/v1/bookings").json() == {"bookings": []}


def test_a_claim_of_a_request_that_died_before_reserving_is_taken_over(dav: DavSite) -> None:
    body = (b'{"event_type":"consult","start":"%s","attendee":{"name":"Ann Example",'
            b'"email":"ann@example.com"}}' % SLOT.encode())
    keys_of(dav).begin("desk", "k-6", request_fingerprint("POST", "/v1/bookings", body))
    headers = {"Content-Type": "application/json"}
    assert dav.post(body, key="k-6", headers=headers).status_code == 409

    # Past 2 × confirm_within (5s) + 2 minutes: that request cannot be running.
    dav.site.clock[0] += timedelta(minutes=2, seconds=11)
    response = dav.post(body, key="k-6", headers=headers)

    assert response.status_code == 201, response.text
    assert dav.post(body, key="k-6", headers=headers).content == response.content


def test_a_request_that_died_after_reserving_answers_the_retry_with_its_booking(
        dav: DavSite) -> None:
    """The crash between the reservation and the answer: the key and the
    booking were committed together, so the retry gets that booking (202),
    not a second one."""
    body = (b'{"event_type":"consult","start":"%s","attendee":{"name":"Ann Example",'
            b'"email":"ann@example.com"}}' % SLOT.encode())
    keys = keys_of(dav)
    keys.begin("desk", "k-7", request_fingerprint("POST", "/v1/bookings", body))
    booking = dav.app.bookings.book(
        "consult", dav.app.clock() + timedelta(hours=2), Attendee("Ann Example", "ann@example.com"),
        "", dav.app.clock(),
        on_reserved=lambda uow, b: keys.hold(uow, "desk", "k-7", f'{{"id":"{b.id}",'
                                                                 f'"status":"pending"}}'))
    # ... and the process died here, before the outbox ran or anyone answered.
    headers = {"Content-Type": "application/json"}
    assert_problem(dav.post(body, key="k-7", headers=headers), 409,
                   "/problems/idempotency-key-in-flight")

    dav.site.clock[0] += timedelta(minutes=3)
    retry = dav.post(body, key="k-7", headers=headers)

    assert retry.status_code == 202
    assert retry.json() == {"id": booking.id, "status": "pending"}
    assert retry.headers["location"] == f"/v1/bookings/{booking.id}"
    assert [b["id"] for b in dav.get("/v1/bookings").json()["bookings"]] == [booking.id]


def test_a_5xx_answer_is_not_stored(make_site: MakeSite, radicale: Server) -> None:  # noqa: F811
    dav = make_dav_site(make_site, radicale)
    dav = DavSite(make_site(down_room_config(dav, live_recheck=True).text()), radicale, dav.ids)
    team = {**CONSULT, "event_type": "team"}
    assert_problem(dav.post(team, key="k-8"), 503, "/problems/provider-unavailable")
    fingerprint = request_fingerprint("POST", "/v1/bookings",
                                      httpx.Request("POST", "/", json=team).read())
    # The key is free again: a retry runs the request anew.
    assert keys_of(dav).begin("desk", "k-8", fingerprint).state is IdempotencyState.NEW


# ---- races over a real socket -----------------------------------------------------------------


@pytest.fixture
def served(dav: DavSite) -> Iterator[tuple[DavSite, str]]:
    server = HttpServer(dav.site.api, host="127.0.0.1", port=0)
    server.start()
    yield dav, server.url
    server.stop()


def post_in_parallel(url: str, bodies: list[dict[str, Any]], key: str | None = None
                     ) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {TOKENS['desk']}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client, \
            ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: client.post("/v1/bookings", json=body), bodies))


def test_parallel_requests_for_one_slot_book_it_once(served: tuple[DavSite, str]) -> None:
    dav, url = served
    bodies = [{**CONSULT, "attendee": {"name": f"Guest {n}", "email": f"g{n}@example.com"}}
              for n in range(20)]

    answers = post_in_parallel(url, bodies)

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 19, [a.text for a in answers if a.status_code >= 500]
    [winner] = [answer.json() for answer in answers if answer.status_code == 201]
    assert {a.json()["reason"] for a in answers if a.status_code == 409} == {"owner_busy"}
    assert dav.uids("alice") == dav.uids("room-a") == [uid_of(winner["id"])]
    assert dav.uids("room-b") == []


def test_parallel_requests_with_one_key_book_once(served: tuple[DavSite, str]) -> None:
    dav, url = served

    answers = post_in_parallel(url, [CONSULT] * 10, key="k-race")

    created = [answer for answer in answers if answer.status_code == 201]
    in_flight = [answer for answer in answers if answer.status_code == 409]
    assert len(created) + len(in_flight) == 10, [a.text for a in answers]
    assert {a.json()["type"] for a in in_flight} <= {"/problems/idempotency-key-in-flight"}
    assert len({answer.content for answer in created}) == 1  # the first answer, replayed
    assert len(dav.get("/v1/bookings").json()["bookings"]) == 1
    assert len(dav.uids("alice")) == 1
