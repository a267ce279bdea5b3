"""The Graph fake's own rules, driven through msal (login) and requests (Graph calls).

A fake that answers what Graph would not fails here: paging of delta rounds,
@removed items, series expansion, transactionId de-duplication, etags, the
error shape, throttling, getSchedule's limits and the room mailboxes' answers.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.graph import GraphFake, RoomAnswer

WINDOW = {"startDateTime": "2027-03-01T00:00:00Z", "endDateTime": "2027-04-30T00:00:00Z"}
PROPERTY_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calpoolBooking"


@pytest.fixture(scope="module")
def fake() -> Iterator[GraphFake]:
    with GraphFake() as running:
        yield running


def _session(fake: GraphFake) -> requests.Session:
    session = requests.Session()
    session.verify = fake.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
    return session


def _app(
    fake: GraphFake,
    *,
    secret: str | None = None,
    tenant: str | None = None,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        fake.client_id,
        client_credential=secret or fake.client_secret,
        authority=f"{fake.authority_url}/{tenant or fake.tenant_id}",
        instance_discovery=False,
        http_client=_session(fake),
    )


class Graph:
    """requests against the fake with a token msal got from it."""

    def __init__(self, fake: GraphFake) -> None:
        result = _app(fake).acquire_token_for_client(["https://graph.microsoft.com/.default"])
        assert "access_token" in result, result
        self.session = _session(fake)
        self.session.headers["Authorization"] = f"Bearer {result['access_token']}"
        self.base = fake.graph_url

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        return self.session.request(method, url, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def graph(fake: GraphFake) -> Graph:
    return Graph(fake)


@pytest.fixture
def user(fake: GraphFake) -> str:
    name = f"person-{uuid.uuid4().hex[:8]}@contoso.example"
    fake.add_mailbox(name)
    return name


def _event(subject: str, start: str, end: str, zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def _eventually(check: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _delta_round(
    graph: Graph, first: str, **kwargs: Any
) -> tuple[list[list[dict[str, Any]]], str]:
    """Pages of one round (following nextLinks) and its deltaLink."""
    pages, url = [], first
    while True:
        answer = graph("GET", url, **kwargs)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        pages.append(body["value"])
        if "@odata.deltaLink" in body:
            return pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]
        kwargs.pop("params", None)  # the state token carries the window


def _assert_graph_error(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


# ---- login --------------------------------------------------------------------------------------


def test_msal_gets_a_token_and_serves_the_second_from_its_cache(fake: GraphFake) -> None:
    app = _app(fake)
    before = sum(1 for m, p, *_ in fake.requests if p.endswith("/oauth2/v2.0/token"))
    first = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    second = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    after = sum(1 for m, p, *_ in fake.requests if p.endswith("/oauth2/v2.0/token"))
    assert first["token_type"] == "Bearer" and first["expires_in"] > 3000
    assert second["access_token"] == first["access_token"]
    assert after - before == 1
    assert any(
        p == f"/{fake.tenant_id}/v2.0/.well-known/openid-configuration"
        for _, p, *_ in fake.requests
    )


def test_a_wrong_secret_is_invalid_client_7000215(fake: GraphFake) -> None:
    result = _app(fake, secret="not-the-secret").acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]
    assert "access_token" not in result


def test_a_scope_without_default_is_refused(fake: GraphFake) -> None:
    result = _app(fake).acquire_token_for_client(["https://graph.microsoft.com/Calendars.Read"])
    assert result["error"] == "invalid_scope"
    assert 1002012 in result["error_codes"]


def test_an_unknown_tenant_is_aadsts90002(fake: GraphFake) -> None:
    answer = _session(fake).get(
        f"{fake.authority_url}/no-such-tenant/v2.0/.well-known/openid-configuration", timeout=10
    )
    assert answer.status_code == 400
    assert "AADSTS90002" in answer.json()["error_description"]
    with pytest.raises(ValueError):
        _app(fake, tenant="no-such-tenant")


def test_graph_needs_a_token_the_fake_issued(fake: GraphFake, user: str) -> None:
    session = _session(fake)
    url = f"{fake.graph_url}/users/{user}/events"
    _assert_graph_error(session.get(url, timeout=10), 401, "InvalidAuthenticationToken")
    _assert_graph_error(
        session.get(url, headers={"Authorization": "Bearer forged"}, timeout=10),
        401,
        "InvalidAuthenticationToken",
    )


def test_an_unknown_mailbox_is_error_invalid_user(graph: Graph) -> None:
    _assert_graph_error(
        graph("GET", "/users/nobody@contoso.example/events"), 404, "ErrorInvalidUser"
    )


# ---- delta --------------------------------------------------------------------------------------


def test_delta_pages_then_replays_changes_since_the_delta_link(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    made = [
        fake.create(
            user, _event(f"e{i}", f"2027-03-0{i + 1}T09:00:00", f"2027-03-0{i + 1}T10:00:00")
        )
        for i in range(5)
    ]
    fake.create(user, _event("outside", "2027-06-01T09:00:00", "2027-06-01T10:00:00"))
    pages, delta_link = _delta_round(
        graph,
        f"/users/{user}/calendarView/delta",
        params=WINDOW,
        headers={"Prefer": "odata.maxpagesize=2"},
    )
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {e["id"] for p in pages for e in p} == {e["id"] for e in made}

    fake.update(
        user,
        made[0]["id"],
        {
            "subject": "moved",
            "start": made[0]["start"],
            "end": {"dateTime": "2027-03-01T11:00:00", "timeZone": "UTC"},
        },
    )
    fake.delete(user, made[1]["id"])
    added = fake.create(user, _event("new", "2027-03-20T09:00:00", "2027-03-20T10:00:00"))
    fake.create(user, _event("still outside", "2027-07-01T09:00:00", "2027-07-01T10:00:00"))
    pages, delta_link_2 = _delta_round(graph, delta_link)
    items = {e["id"]: e for p in pages for e in p}
    assert set(items) == {made[0]["id"], made[1]["id"], added["id"]}
    assert items[made[1]["id"]]["@removed"] == {"reason": "deleted"}
    assert items[made[0]["id"]]["subject"] == "moved"
    assert items[made[0]["id"]]["end"]["dateTime"].startswith("2027-03-01T11:00:00")
    assert items[added["id"]]["iCalUId"] == added["iCalUId"]

    pages, _ = _delta_round(graph, delta_link_2)
    assert pages == [[]]


def test_delta_needs_a_window_and_refuses_filter(graph: Graph, user: str) -> None:
    _assert_graph_error(
        graph("GET", f"/users/{user}/calendarView/delta"), 400, "ErrorInvalidParameter"
    )
    answer = graph(
        "GET", f"/users/{user}/calendarView/delta", params={**WINDOW, "$filter": "subject eq 'x'"}
    )
    assert answer.status_code == 400


def test_expired_delta_tokens_answer_410(fake: GraphFake, graph: Graph, user: str) -> None:
    fake.create(user, _event("a", "2027-03-02T09:00:00", "2027-03-02T10:00:00"))
    _, delta_link = _delta_round(graph, f"/users/{user}/calendarView/delta", params=WINDOW)
    fake.expire_delta_tokens(user)
    _assert_graph_error(graph("GET", delta_link), 410, "syncStateNotFound")
    pages, fresh = _delta_round(graph, f"/users/{user}/calendarView/delta", params=WINDOW)
    assert sum(len(p) for p in pages) == 1
    assert graph("GET", fresh).status_code == 200


def test_an_empty_page_with_a_next_link_can_start_a_round(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    fake.create(user, _event("a", "2027-03-02T09:00:00", "2027-03-02T10:00:00"))
    fake.empty_delta_page = True
    try:
        pages, _ = _delta_round(graph, f"/users/{user}/calendarView/delta", params=WINDOW)
    finally:
        fake.empty_delta_page = False
    assert pages[0] == [] and len(pages) == 2 and len(pages[1]) == 1


# ---- series -------------------------------------------------------------------------------------

WEEKLY = {
    "pattern": {
        "type": "weekly",
        "interval": 1,
        "daysOfWeek": ["monday", "wednesday"],
        "firstDayOfWeek": "monday",
    },
    "range": {"type": "numbered", "startDate": "2027-03-01", "numberOfOccurrences": 6},
}


def test_a_series_is_expanded_into_occurrences_and_a_cancelled_one_is_removed(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    master = fake.create(
        user,
        _event(
            "weekly",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "W. Europe Standard Time",
            recurrence=WEEKLY,
        ),
    )
    pages, delta_link = _delta_round(graph, f"/users/{user}/calendarView/delta", params=WINDOW)
    occurrences = [e for p in pages for e in p]
    assert [e["start"]["dateTime"][:16] for e in occurrences] == [
        "2027-03-01T08:00",
        "2027-03-03T08:00",
        "2027-03-08T08:00",
        "2027-03-10T08:00",
        "2027-03-15T08:00",
        "2027-03-17T08:00",
    ]  # 09:00 in Berlin, CET, shown in UTC
    assert {e["type"] for e in occurrences} == {"occurrence"}
    assert {e["seriesMasterId"] for e in occurrences} == {master["id"]}
    assert {e["iCalUId"] for e in occurrences} == {master["iCalUId"]}
    assert len({e["id"] for e in occurrences}) == 6

    assert graph("DELETE", f"/users/{user}/events/{occurrences[2]['id']}").status_code == 204
    changed = graph(
        "PATCH",
        f"/users/{user}/events/{occurrences[3]['id']}",
        json={"subject": "this one differs"},
    )
    assert changed.status_code == 200 and changed.json()["type"] == "exception"
    pages, _ = _delta_round(graph, delta_link)
    items = {e["id"]: e for p in pages for e in p}
    assert items[occurrences[2]["id"]]["@removed"] == {"reason": "deleted"}
    assert items[occurrences[3]["id"]]["subject"] == "this one differs"
    view = graph("GET", f"/users/{user}/calendarView", params=WINDOW).json()["value"]
    assert len(view) == 5 and occurrences[2]["id"] not in {e["id"] for e in view}


def test_a_daily_series_keeps_its_wall_clock_across_dst_and_prefer_timezone_is_honoured(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    daily = {
        "pattern": {"type": "daily", "interval": 2},
        "range": {"type": "endDate", "startDate": "2027-03-25", "endDate": "2027-03-31"},
    }
    fake.create(
        user,
        _event(
            "daily",
            "2027-03-25T09:00:00",
            "2027-03-25T10:00:00",
            "Europe/Berlin",
            recurrence=daily,
        ),
    )
    utc = graph(
        "GET",
        f"/users/{user}/calendarView",
        params=WINDOW,
        headers={"Prefer": 'outlook.timezone="UTC"'},
    ).json()["value"]
    assert [e["start"]["dateTime"][:16] for e in utc] == [
        "2027-03-25T08:00",
        "2027-03-27T08:00",
        "2027-03-29T07:00",
        "2027-03-31T07:00",
    ]
    assert {e["start"]["timeZone"] for e in utc} == {"UTC"}
    local = graph(
        "GET",
        f"/users/{user}/calendarView",
        params=WINDOW,
        headers={"Prefer": 'outlook.timezone="Europe/Berlin"'},
    ).json()["value"]
    assert {e["start"]["dateTime"][11:16] for e in local} == {"09:00"}


# ---- events -------------------------------------------------------------------------------------


def test_post_with_the_same_transaction_id_makes_one_event(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    body = _event(
        "booking",
        "2027-03-05T09:00:00",
        "2027-03-05T10:00:00",
        transactionId="booking-42-v1",
        singleValueExtendedProperties=[{"id": PROPERTY_ID, "value": "booking-42"}],
    )
    first = graph("POST", f"/users/{user}/events", json=body)
    again = graph("POST", f"/users/{user}/events", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(fake.events(user)) == 1
    assert "singleValueExtendedProperties" not in first.json()


def test_lookup_by_extended_property(fake: GraphFake, graph: Graph, user: str) -> None:
    for n in (1, 2):
        fake.create(
            user,
            _event(
                f"b{n}",
                "2027-03-05T09:00:00",
                "2027-03-05T10:00:00",
                singleValueExtendedProperties=[{"id": PROPERTY_ID, "value": f"booking-{n}"}],
            ),
        )
    answer = graph(
        "GET",
        f"/users/{user}/events",
        params={
            "$filter": f"singleValueExtendedProperties/any(ep: ep/id eq '{PROPERTY_ID}' "
            "and ep/value eq 'booking-2')",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{PROPERTY_ID}')",
        },
    )
    assert answer.status_code == 200, answer.text
    [found] = answer.json()["value"]
    assert found["subject"] == "b2"
    assert found["singleValueExtendedProperties"] == [{"id": PROPERTY_ID, "value": "booking-2"}]


def test_patch_with_a_stale_etag_is_412_and_a_deleted_event_is_404(
    graph: Graph, user: str
) -> None:
    created = graph(
        "POST",
        f"/users/{user}/events",
        json=_event("x", "2027-03-05T09:00:00", "2027-03-05T10:00:00"),
    ).json()
    url = f"/users/{user}/events/{created['id']}"
    patched = graph(
        "PATCH", url, json={"subject": "y"}, headers={"If-Match": created["@odata.etag"]}
    )
    assert patched.status_code == 200
    assert patched.json()["changeKey"] != created["changeKey"]
    _assert_graph_error(
        graph("PATCH", url, json={"subject": "z"}, headers={"If-Match": created["@odata.etag"]}),
        412,
        "ErrorIrresolvableConflict",
    )
    assert graph("DELETE", url).status_code == 204
    _assert_graph_error(graph("GET", url), 404, "ErrorItemNotFound")
    _assert_graph_error(graph("DELETE", url), 404, "ErrorItemNotFound")


def test_calendar_view_pages(fake: GraphFake, graph: Graph, user: str) -> None:
    for day in range(1, 8):
        fake.create(
            user, _event(f"d{day}", f"2027-03-0{day}T09:00:00", f"2027-03-0{day}T10:00:00")
        )
    seen, url, params = [], f"/users/{user}/calendarView", dict(WINDOW)
    while url:
        body = graph("GET", url, params=params, headers={"Prefer": "odata.maxpagesize=3"}).json()
        seen.append(len(body["value"]))
        url, params = body.get("@odata.nextLink"), {}
    assert seen == [3, 3, 1]


# ---- errors and throttling ----------------------------------------------------------------------


def test_injected_throttling_has_retry_after_and_passes(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    fake.fail(path=f"/users/{user}/events$", status=429, retry_after=3, times=2)
    for _ in range(2):
        answer = graph("GET", f"/users/{user}/events", headers={"client-request-id": "c-1"})
        _assert_graph_error(answer, 429, "TooManyRequests")
        assert answer.headers["Retry-After"] == "3"
        assert answer.json()["error"]["innerError"]["client-request-id"] == "c-1"
    assert graph("GET", f"/users/{user}/events").status_code == 200
    fake.fail(method="GET", path="calendarView", status=503, code="ServiceNotAvailable")
    _assert_graph_error(
        graph("GET", f"/users/{user}/calendarView", params=WINDOW), 503, "ServiceNotAvailable"
    )


def test_a_throttling_storm_lasts_for_one_mailbox_until_calm_and_spares_the_others(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}@contoso.example"
    fake.add_mailbox(other)
    fake.fail(path=f"/users/{user}/", status=429, retry_after=7, lasting=60)
    for _ in range(5):  # however many come: not counted down
        answer = graph("GET", f"/users/{user}/events")
        _assert_graph_error(answer, 429, "TooManyRequests")
        assert answer.headers["Retry-After"] == "7"
    assert graph("GET", f"/users/{other}/events").status_code == 200
    fake.calm()
    assert graph("GET", f"/users/{user}/events").status_code == 200


def test_a_throttling_storm_ends_by_itself(fake: GraphFake, graph: Graph, user: str) -> None:
    fake.fail(path=f"/users/{user}/", status=429, retry_after=1, lasting=1.0)
    _assert_graph_error(graph("GET", f"/users/{user}/events"), 429, "TooManyRequests")
    _eventually(lambda: graph("GET", f"/users/{user}/events").status_code == 200, within=10)


def test_a_fifth_concurrent_request_for_one_mailbox_is_429_and_others_are_served(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}@contoso.example"
    fake.add_mailbox(other)
    fake.fail(path=f"/users/{user}/", status=200, delay=1.0, times=5)
    with ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(graph, "GET", f"/users/{user}/events") for _ in range(5)]
        started = time.monotonic()
        quick = graph("GET", f"/users/{other}/events")
        quick_seconds = time.monotonic() - started
        codes = sorted(f.result().status_code for f in slow)
    assert quick.status_code == 200 and quick_seconds < 0.9
    assert codes == [200, 200, 200, 200, 429]
    throttled = next(f.result() for f in slow if f.result().status_code == 429)
    assert "MailboxConcurrency" in throttled.json()["error"]["message"]


# ---- getSchedule --------------------------------------------------------------------------------


def _schedule_body(
    schedules: list[str], start: str, end: str, interval: int = 60
) -> dict[str, Any]:
    return {
        "schedules": schedules,
        "availabilityViewInterval": interval,
        "startTime": {"dateTime": start, "timeZone": "UTC"},
        "endTime": {"dateTime": end, "timeZone": "UTC"},
    }


def test_get_schedule_views_and_per_schedule_errors(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    fake.create(user, _event("busy", "2027-03-05T09:00:00", "2027-03-05T10:00:00"))
    fake.create(
        user, _event("maybe", "2027-03-05T11:00:00", "2027-03-05T11:30:00", showAs="tentative")
    )
    answer = graph(
        "POST",
        f"/users/{user}/calendar/getSchedule",
        json=_schedule_body(
            [user, "ghost@contoso.example"], "2027-03-05T08:00:00", "2027-03-05T12:00:00"
        ),
    )
    assert answer.status_code == 200, answer.text
    mine, ghost = answer.json()["value"]
    assert mine["availabilityView"] == "0201"
    assert [i["status"] for i in mine["scheduleItems"]] == ["busy", "tentative"]
    assert ghost["error"]["responseCode"] == "ErrorMailRecipientNotFound"


def test_events_filtered_by_ical_uid(fake: GraphFake, graph: Graph, user: str) -> None:
    wanted = fake.create(user, _event("wanted", "2027-03-05T09:00:00", "2027-03-05T10:00:00"))
    fake.create(user, _event("other", "2027-03-05T11:00:00", "2027-03-05T12:00:00"))
    answer = graph(
        "GET", f"/users/{user}/events", params={"$filter": f"iCalUId eq '{wanted['iCalUId']}'"}
    )
    assert answer.status_code == 200, answer.text
    assert [e["id"] for e in answer.json()["value"]] == [wanted["id"]]


def test_get_schedule_as_an_unknown_mailbox_is_invalid_user(graph: Graph, user: str) -> None:
    _assert_graph_error(
        graph(
            "POST",
            "/users/ghost@contoso.example/calendar/getSchedule",
            json=_schedule_body([user], "2027-03-05T08:00:00", "2027-03-05T12:00:00"),
        ),
        404,
        "ErrorInvalidUser",
    )


def test_get_schedule_limits(graph: Graph, user: str) -> None:
    many = [f"p{i}@contoso.example" for i in range(21)]
    assert (
        graph(
            "POST",
            f"/users/{user}/calendar/getSchedule",
            json=_schedule_body(many, "2027-03-05T08:00:00", "2027-03-05T12:00:00"),
        ).status_code
        == 400
    )
    _assert_graph_error(
        graph(
            "POST",
            f"/users/{user}/calendar/getSchedule",
            json=_schedule_body([user], "2027-03-01T00:00:00", "2027-05-03T00:00:00"),
        ),
        400,
        "ErrorTimeIntervalTooBig",
    )
    assert (
        graph(
            "POST",
            f"/users/{user}/calendar/getSchedule",
            json=_schedule_body([user], "2027-03-01T00:00:00", "2027-05-01T00:00:00"),
        ).status_code
        == 200
    )


# ---- rooms --------------------------------------------------------------------------------------


def _room(fake: GraphFake, answer: RoomAnswer = RoomAnswer.AUTO) -> str:
    email = f"room-{uuid.uuid4().hex[:8]}@contoso.example"
    fake.add_room(email, name="Room", answer=answer, delay=0.1)
    return email


def _invite(graph: Graph, user: str, room: str, start: str, end: str) -> dict[str, Any]:
    answer = graph(
        "POST",
        f"/users/{user}/events",
        json=_event(
            "meeting",
            start,
            end,
            location={"displayName": "Room"},
            attendees=[{"type": "resource", "emailAddress": {"address": room, "name": "Room"}}],
        ),
    )
    assert answer.status_code == 201
    created: dict[str, Any] = answer.json()
    assert created["attendees"][0]["status"]["response"] == "none"
    return created


def _room_response(graph: Graph, user: str, event_id: str) -> str:
    event = graph("GET", f"/users/{user}/events/{event_id}").json()
    return str(event["attendees"][0]["status"]["response"])


def test_an_auto_room_accepts_when_free_and_holds_the_meeting(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    room = _room(fake)
    created = _invite(graph, user, room, "2027-03-05T09:00:00", "2027-03-05T10:00:00")
    _eventually(lambda: _room_response(graph, user, created["id"]) == "accepted")
    after = graph("GET", f"/users/{user}/events/{created['id']}").json()
    assert after["changeKey"] != created["changeKey"]
    [held] = fake.events(room)
    assert held["iCalUId"] == created["iCalUId"] and held["id"] != created["id"]


def test_an_auto_room_declines_when_busy(fake: GraphFake, graph: Graph, user: str) -> None:
    room = _room(fake)
    fake.create(room, _event("taken", "2027-03-05T09:30:00", "2027-03-05T10:30:00"))
    created = _invite(graph, user, room, "2027-03-05T09:00:00", "2027-03-05T10:00:00")
    _eventually(lambda: _room_response(graph, user, created["id"]) == "declined")
    assert [e["subject"] for e in fake.events(room)] == ["taken"]


def test_a_silent_room_never_answers_until_told(fake: GraphFake, graph: Graph, user: str) -> None:
    silent, witness = _room(fake, RoomAnswer.SILENT), _room(fake)  # same delay
    created = graph(
        "POST",
        f"/users/{user}/events",
        json=_event(
            "meeting",
            "2027-03-05T09:00:00",
            "2027-03-05T10:00:00",
            attendees=[
                {"type": "resource", "emailAddress": {"address": room}}
                for room in (silent, witness)
            ],
        ),
    ).json()

    def responses() -> dict[str, str]:
        event = graph("GET", f"/users/{user}/events/{created['id']}").json()
        return {a["emailAddress"]["address"]: a["status"]["response"] for a in event["attendees"]}

    _eventually(lambda: responses()[witness] == "accepted")
    assert responses()[silent] == "none"
    fake.answer_as_room(user, created["id"], silent, "accepted")
    assert responses()[silent] == "accepted"
    assert len(fake.events(silent)) == 1


# ---- subscriptions -----------------------------------------------------------------------------


class Receiver:
    """An https notification endpoint (a cert from the fake's CA) that records what arrives."""

    def __init__(self, fake: GraphFake, *, echo_token: bool = True) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                if token:
                    reply = token[0].encode() if echo_token else b"nope"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                received.append({"path": self.path, **json.loads(body)})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        cert_file, key_file = fake.issue_cert()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(fake: GraphFake) -> Iterator[Receiver]:
    fake.receiver_ca_file = fake.ca_file
    running = Receiver(fake)
    yield running
    running.close()


def _subscription(user: str, url: str, **extra: Any) -> dict[str, Any]:
    expiry = datetime.now(UTC) + timedelta(minutes=4000)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{url}/hooks/microsoft",
        "lifecycleNotificationUrl": f"{url}/hooks/microsoft/lifecycle",
        "resource": f"/users/{user}/events",
        "clientState": "s3cret",
        "expirationDateTime": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }


def test_a_subscription_is_validated_then_notifies_changes_and_lifecycle_events(
    fake: GraphFake, graph: Graph, user: str, receiver: Receiver
) -> None:
    answer = graph("POST", "/subscriptions", json=_subscription(user, receiver.url))
    assert answer.status_code == 201, answer.text
    subscription_id = answer.json()["id"]
    validations = [u for u, _, _ in fake.deliveries if "validationToken=" in u]
    assert any(u.startswith(f"{receiver.url}/hooks/microsoft?") for u in validations)
    assert any(u.startswith(f"{receiver.url}/hooks/microsoft/lifecycle?") for u in validations)

    created = fake.create(user, _event("x", "2027-03-05T09:00:00", "2027-03-05T10:00:00"))
    fake.delete(user, created["id"])
    _eventually(lambda: len(receiver.received) >= 2)
    notes = [n["value"][0] for n in receiver.received]
    assert [n["changeType"] for n in notes] == ["created", "deleted"]
    assert {n["clientState"] for n in notes} == {"s3cret"}
    assert {n["subscriptionId"] for n in notes} == {subscription_id}
    assert notes[0]["resourceData"]["id"] == created["id"]

    fake.send_lifecycle(subscription_id, "missed")
    _eventually(lambda: len(receiver.received) >= 3)
    assert receiver.received[2]["path"] == "/hooks/microsoft/lifecycle"
    assert receiver.received[2]["value"][0]["lifecycleEvent"] == "missed"
    assert graph("POST", f"/subscriptions/{subscription_id}/reauthorize").status_code == 200
    renewed = graph(
        "PATCH",
        f"/subscriptions/{subscription_id}",
        json={"expirationDateTime": (datetime.now(UTC) + timedelta(days=6)).isoformat()},
    )
    assert renewed.status_code == 200
    assert graph("DELETE", f"/subscriptions/{subscription_id}").status_code == 204
    assert fake.subscriptions[subscription_id]["deleted"] is True
    _assert_graph_error(graph("GET", f"/subscriptions/{subscription_id}"), 404, "ResourceNotFound")


def test_a_subscription_is_refused_when_validation_fails_or_it_lasts_too_long(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    fake.receiver_ca_file = fake.ca_file
    wrong = Receiver(fake, echo_token=False)
    try:
        before = len(fake.subscriptions)
        answer = graph("POST", "/subscriptions", json=_subscription(user, wrong.url))
        assert answer.status_code == 400, answer.text
        assert len(fake.subscriptions) == before
        too_long = (datetime.now(UTC) + timedelta(minutes=10081)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (
            graph(
                "POST",
                "/subscriptions",
                json=_subscription(user, wrong.url, expirationDateTime=too_long),
            ).status_code
            == 400
        )
        assert (
            graph(
                "POST",
                "/subscriptions",
                json=_subscription(user, wrong.url, clientState="x" * 129),
            ).status_code
            == 400
        )
    finally:
        wrong.close()


def test_a_declining_room_answers_again_after_a_time_change(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    room = _room(fake, RoomAnswer.DECLINE)
    created = _invite(graph, user, room, "2027-03-05T09:00:00", "2027-03-05T10:00:00")
    _eventually(lambda: _room_response(graph, user, created["id"]) == "declined")
    assert fake.events(room) == []
    fake.set_room_answer(room, RoomAnswer.ACCEPT)
    moved = graph(
        "PATCH",
        f"/users/{user}/events/{created['id']}",
        json={
            "start": {"dateTime": "2027-03-05T11:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-05T12:00:00", "timeZone": "UTC"},
        },
    )
    assert moved.json()["attendees"][0]["status"]["response"] == "none"
    _eventually(lambda: _room_response(graph, user, created["id"]) == "accepted")
    [held] = fake.events(room)
    assert held["start"]["dateTime"].startswith("2027-03-05T11:00")
    graph("DELETE", f"/users/{user}/events/{created['id']}")
    assert fake.events(room) == []


def _certificate() -> tuple[bytes, bytes, str]:
    """(private key PEM, certificate PEM, SHA-1 thumbprint hex) of a self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calpool test app")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        key_pem,
        certificate.public_bytes(serialization.Encoding.PEM),
        certificate.fingerprint(hashes.SHA1()).hex(),
    )


@pytest.mark.parametrize("style", ["sha1 thumbprint", "public certificate"])
def test_a_registered_certificate_gets_a_token_and_another_does_not(
    fake: GraphFake, style: str
) -> None:
    key_pem, cert_pem, thumbprint = _certificate()
    credential: dict[str, Any] = {"private_key": key_pem.decode()}
    if style == "sha1 thumbprint":
        credential["thumbprint"] = thumbprint
    else:
        credential["public_certificate"] = cert_pem.decode()
    app = msal.ConfidentialClientApplication(
        fake.client_id,
        client_credential=credential,
        authority=f"{fake.authority_url}/{fake.tenant_id}",
        instance_discovery=False,
        http_client=_session(fake),
    )
    refused = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert refused["error"] == "invalid_client" and 700027 in refused["error_codes"]
    fake.add_certificate(cert_pem)
    granted = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in granted, granted


def test_tokens_expire_with_the_fake_clock_and_a_new_one_works(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    assert graph("GET", f"/users/{user}/events").status_code == 200
    fake.advance(3600)  # past the token's expires_in (3599 s)
    try:
        _assert_graph_error(
            graph("GET", f"/users/{user}/events"), 401, "InvalidAuthenticationToken"
        )
        fresh = Graph(fake)  # a new app: msal's cache of the old one still holds the old token
        assert fresh("GET", f"/users/{user}/events").status_code == 200
        fake.expire_access_tokens()
        _assert_graph_error(
            fresh("GET", f"/users/{user}/events"), 401, "InvalidAuthenticationToken"
        )
    finally:
        fake.advance(-3600)  # the module's other tests run on the real time
        graph.session.headers["Authorization"] = Graph(fake).session.headers["Authorization"]


def test_windows_zone_names_are_understood_in_events_and_prefer(
    fake: GraphFake, graph: Graph, user: str
) -> None:
    fake.create(
        user, _event("x", "2027-03-05T09:00:00", "2027-03-05T10:00:00", "Pacific Standard Time")
    )
    [shown] = graph("GET", f"/users/{user}/calendarView", params=WINDOW).json()["value"]
    assert shown["start"] == {"dateTime": "2027-03-05T17:00:00.0000000", "timeZone": "UTC"}
    [local] = graph(
        "GET",
        f"/users/{user}/calendarView",
        params=WINDOW,
        headers={"Prefer": 'outlook.timezone="Tokyo Standard Time"'},
    ).json()["value"]
    assert local["start"] == {
        "dateTime": "2027-03-06T02:00:00.0000000",
        "timeZone": "Tokyo Standard Time",
    }
