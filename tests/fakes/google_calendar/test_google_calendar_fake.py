"""The Google Calendar fake's own rules, driven through google-api-python-client + google-auth.

A fake that answers what Google would not fails here: the JWT-bearer login and
delegation, paging and sync tokens of events.list, client-chosen ids and
etags, recurrence expansion, freeBusy's limits, the error shape, the rooms'
answers and push channels.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError

from tests.fakes.google_calendar import GoogleCalendarFake, RoomAnswer
from tests.fakes.google_calendar.push import MAX_TTL

SCOPES = ["https://www.googleapis.com/auth/calendar"]
ALICE = "alice@acme.test"
BOB = "bob@acme.test"
ROOM = "c_room-a@resource.calendar.google.com"
BUSY_ROOM = "c_room-b@resource.calendar.google.com"
QUIET_ROOM = "c_room-c@resource.calendar.google.com"


def _eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _reason(error: HttpError) -> str:
    return str(json.loads(error.content)["error"]["errors"][0]["reason"])


@pytest.fixture(scope="module")
def fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake() as running:
        for user in (ALICE, BOB):
            running.add_calendar(user, timezone="Europe/Berlin")
            running.delegate(user)
        running.add_room(ROOM, name="Room A", delay=0.05)
        running.add_room(BUSY_ROOM, name="Room B", delay=0.05)
        running.add_room(QUIET_ROOM, answer=RoomAnswer.SILENT, delay=0.05)
        yield running


@pytest.fixture(scope="module")
def key(fake: GoogleCalendarFake) -> dict[str, Any]:
    return fake.service_account_info()


def _service(
    fake: GoogleCalendarFake, key: dict[str, Any], subject: str = ALICE, **http_options: Any
) -> Resource:
    credentials = service_account.Credentials.from_service_account_info(
        key, scopes=SCOPES, subject=subject
    )
    authorized = google_auth_httplib2.AuthorizedHttp(
        credentials, http=httplib2.Http(timeout=10, **http_options)
    )
    return build(
        "calendar",
        "v3",
        http=authorized,
        static_discovery=True,
        client_options={"api_endpoint": fake.api_url + "calendar/v3/"},
    )


@pytest.fixture(scope="module")
def api(fake: GoogleCalendarFake, key: dict[str, Any]) -> Resource:
    return _service(fake, key)


def _timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


def _all_pages(api: Resource, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items, pages) of a whole events.list round."""
    items: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = api.events().list(pageToken=page_token, **params).execute()
        pages.append(page)
        items += page["items"]
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, pages


# ---- login -------------------------------------------------------------------------------


def test_the_token_endpoint_signs_in_a_delegated_user(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    answer = api.calendars().get(calendarId="primary").execute()
    assert answer["id"] == ALICE and answer["timeZone"] == "Europe/Berlin"
    assert fake.requests[-1][3] == ALICE
    assert any(r[1] == "/token" for r in fake.requests)


def test_a_subject_without_delegation_is_unauthorized_client(
    fake: GoogleCalendarFake, key: dict[str, Any]
) -> None:
    service = _service(fake, key, subject="mallory@acme.test")
    with pytest.raises(RefreshError, match="unauthorized_client"):
        service.calendars().get(calendarId="primary").execute()


def test_an_assertion_signed_with_another_key_is_refused(fake: GoogleCalendarFake) -> None:
    first = fake.service_account_info("other@acme-proj.iam.gserviceaccount.com")
    second = fake.service_account_info("third@acme-proj.iam.gserviceaccount.com")
    forged = {**first, "private_key": second["private_key"]}
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        _service(fake, forged).calendars().get(calendarId="primary").execute()


def test_the_api_wants_a_token_and_refuses_an_expired_one(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    bare = requests.get(f"{fake.api_url}calendar/v3/calendars/{ALICE}/events", timeout=10)
    assert bare.status_code == 401
    assert bare.json()["error"]["errors"][0]["reason"] == "required"
    wrong = requests.get(
        f"{fake.api_url}calendar/v3/calendars/{ALICE}/events",
        headers={"Authorization": "Bearer ya29.nonsense"},
        timeout=10,
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == 401
    api.calendars().get(calendarId=ALICE).execute()
    logins = sum(1 for r in fake.requests if r[1] == "/token")
    fake.advance(3601)  # the hour is over on the fake's clock: google-auth refreshes on 401
    api.calendars().get(calendarId=ALICE).execute()
    assert sum(1 for r in fake.requests if r[1] == "/token") == logins + 1


def test_another_users_calendar_is_not_found(api: Resource) -> None:
    with pytest.raises(HttpError) as caught:
        api.events().list(calendarId=BOB).execute()
    assert caught.value.resp.status == 404 and _reason(caught.value) == "notFound"


def test_tls_with_the_test_ca(key: dict[str, Any]) -> None:
    with GoogleCalendarFake(tls=True) as secure:
        secure.add_calendar(ALICE)
        secure.delegate(ALICE)
        service = _service(secure, secure.service_account_info(), ca_certs=secure.ca_file)
        assert secure.api_url.startswith("https://")
        assert service.events().list(calendarId=ALICE).execute()["items"] == []


# ---- writes ------------------------------------------------------------------------------


def test_client_ids_duplicates_and_deleted_ids_stay_taken(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    body = _timed("2027-01-04T09:00:00+01:00", "2027-01-04T10:00:00+01:00", id="calpool0001")
    created = api.events().insert(calendarId=ALICE, body=body, sendUpdates="none").execute()
    assert created["id"] == "calpool0001" and created["status"] == "confirmed"
    assert created["iCalUID"] and created["etag"].startswith('"')
    with pytest.raises(HttpError) as duplicate:
        api.events().insert(calendarId=ALICE, body=body).execute()
    assert duplicate.value.resp.status == 409 and _reason(duplicate.value) == "duplicate"
    with pytest.raises(HttpError) as invalid:
        api.events().insert(calendarId=ALICE, body={**body, "id": "NOT-base32hex"}).execute()
    assert invalid.value.resp.status == 400
    api.events().delete(calendarId=ALICE, eventId="calpool0001").execute()
    assert api.events().get(calendarId=ALICE, eventId="calpool0001").execute()["status"] == (
        "cancelled"
    )
    assert fake.event(ALICE, "calpool0001")["status"] == "cancelled"  # type: ignore[index]
    with pytest.raises(HttpError) as again:
        api.events().insert(calendarId=ALICE, body=body).execute()
    assert again.value.resp.status == 409
    with pytest.raises(HttpError) as gone:
        api.events().delete(calendarId=ALICE, eventId="calpool0001").execute()
    assert gone.value.resp.status == 410


def test_etags_sequence_and_if_match(api: Resource) -> None:
    body = _timed("2027-01-05T09:00:00Z", "2027-01-05T10:00:00Z", id="calpool0002", summary="a")
    first = api.events().insert(calendarId=ALICE, body=body).execute()
    renamed = (
        api.events().patch(calendarId=ALICE, eventId="calpool0002", body={"summary": "b"}).execute()
    )
    assert renamed["etag"] != first["etag"] and renamed["sequence"] == first["sequence"]
    moved = (
        api.events()
        .patch(
            calendarId=ALICE,
            eventId="calpool0002",
            body={"end": {"dateTime": "2027-01-05T11:00:00Z"}},
        )
        .execute()
    )
    assert moved["sequence"] == first["sequence"] + 1 and moved["summary"] == "b"
    stale = api.events().patch(calendarId=ALICE, eventId="calpool0002", body={"summary": "c"})
    stale.headers["If-Match"] = first["etag"]
    with pytest.raises(HttpError) as caught:
        stale.execute()
    assert caught.value.resp.status == 412 and _reason(caught.value) == "conditionNotMet"
    fresh = api.events().update(
        calendarId=ALICE, eventId="calpool0002", body={**body, "summary": "d"}
    )
    fresh.headers["If-Match"] = moved["etag"]
    replaced = fresh.execute()
    assert replaced["summary"] == "d" and replaced["end"]["dateTime"] == "2027-01-05T10:00:00Z"


def test_an_empty_time_range_is_refused(api: Resource) -> None:
    with pytest.raises(HttpError) as caught:
        api.events().insert(
            calendarId=ALICE, body=_timed("2027-01-05T10:00:00Z", "2027-01-05T09:00:00Z")
        ).execute()
    assert caught.value.resp.status == 400 and _reason(caught.value) == "timeRangeEmpty"


# ---- events.list and sync ---------------------------------------------------------------


@pytest.fixture(scope="module")
def listing_calendar(fake: GoogleCalendarFake) -> str:
    fake.add_calendar("carol@acme.test")
    fake.delegate("carol@acme.test")
    for day in range(1, 6):
        fake.insert(
            "carol@acme.test",
            _timed(f"2027-02-0{day}T09:00:00Z", f"2027-02-0{day}T10:00:00Z", summary=f"d{day}"),
        )
    return "carol@acme.test"


@pytest.fixture(scope="module")
def carol(fake: GoogleCalendarFake, key: dict[str, Any]) -> Resource:
    return _service(fake, key, subject="carol@acme.test")


def test_paging_carries_the_sync_token_only_on_the_last_page(
    listing_calendar: str, carol: Resource
) -> None:
    items, pages = _all_pages(carol, calendarId=listing_calendar, maxResults=2)
    assert len(pages) == 3 and len(items) == 5
    assert all("nextSyncToken" not in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    assert len({i["id"] for i in items}) == 5


def test_time_window_bounds_are_exclusive(listing_calendar: str, carol: Resource) -> None:
    items, _ = _all_pages(
        carol,
        calendarId=listing_calendar,
        timeMin="2027-02-02T10:00:00Z",  # d2 ends exactly here: out
        timeMax="2027-02-04T09:00:00Z",  # d4 starts exactly here: out
    )
    assert [i["summary"] for i in items] == ["d3"]
    with pytest.raises(HttpError) as caught:
        carol.events().list(
            calendarId=listing_calendar,
            timeMin="2027-02-04T00:00:00Z",
            timeMax="2027-02-01T00:00:00Z",
        ).execute()
    assert _reason(caught.value) == "timeRangeEmpty"


def test_incremental_sync_reports_changes_and_deletions(
    fake: GoogleCalendarFake, listing_calendar: str, carol: Resource
) -> None:
    items, pages = _all_pages(carol, calendarId=listing_calendar)
    token = pages[-1]["nextSyncToken"]
    unchanged = carol.events().list(calendarId=listing_calendar, syncToken=token).execute()
    assert unchanged["items"] == [] and unchanged["nextSyncToken"] == token
    fake.patch(listing_calendar, items[0]["id"], {"summary": "moved"})
    fake.delete(listing_calendar, items[1]["id"])
    changes, pages = _all_pages(carol, calendarId=listing_calendar, syncToken=token)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {items[0]["id"], items[1]["id"]}
    assert by_id[items[0]["id"]]["summary"] == "moved"
    assert by_id[items[1]["id"]]["status"] == "cancelled"
    newer = pages[-1]["nextSyncToken"]
    assert newer != token
    assert (
        carol.events().list(calendarId=listing_calendar, syncToken=newer).execute()["items"] == []
    )
    fake.expire_sync_tokens(listing_calendar)
    with pytest.raises(HttpError) as caught:
        carol.events().list(calendarId=listing_calendar, syncToken=newer).execute()
    assert caught.value.resp.status == 410 and _reason(caught.value) == "fullSyncRequired"


@pytest.mark.parametrize(
    "restriction",
    [
        {"timeMin": "2027-01-01T00:00:00Z"},
        {"timeMax": "2027-01-01T00:00:00Z"},
        {"q": "x"},
        {"orderBy": "updated"},
        {"iCalUID": "x@google.com"},
        {"privateExtendedProperty": "a=b"},
        {"sharedExtendedProperty": "a=b"},
        {"updatedMin": "2027-01-01T00:00:00Z"},
    ],
)
def test_a_sync_token_refuses_request_restrictions(
    listing_calendar: str, carol: Resource, restriction: dict[str, str]
) -> None:
    _, pages = _all_pages(carol, calendarId=listing_calendar)
    with pytest.raises(HttpError) as caught:
        carol.events().list(
            calendarId=listing_calendar, syncToken=pages[-1]["nextSyncToken"], **restriction
        ).execute()
    assert caught.value.resp.status == 400


def test_show_deleted_private_property_and_ical_uid_filters(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    tagged = _timed(
        "2027-01-06T09:00:00Z",
        "2027-01-06T10:00:00Z",
        id="calpool0003",
        extendedProperties={"private": {"calpoolBooking": "b-1"}},
    )
    api.events().insert(calendarId=ALICE, body=tagged).execute()
    api.events().insert(
        calendarId=ALICE, body=_timed("2027-01-06T11:00:00Z", "2027-01-06T12:00:00Z")
    ).execute()
    found = (
        api.events().list(calendarId=ALICE, privateExtendedProperty="calpoolBooking=b-1").execute()
    )
    assert [i["id"] for i in found["items"]] == ["calpool0003"]
    assert "nextSyncToken" not in found  # a filtered listing cannot be continued
    by_uid = api.events().list(calendarId=ALICE, iCalUID="calpool0003@google.com").execute()
    assert [i["id"] for i in by_uid["items"]] == ["calpool0003"]
    fake.delete(ALICE, "calpool0003")
    plain = api.events().list(calendarId=ALICE, privateExtendedProperty="calpoolBooking=b-1")
    assert plain.execute()["items"] == []
    shown = (
        api.events()
        .list(calendarId=ALICE, privateExtendedProperty="calpoolBooking=b-1", showDeleted=True)
        .execute()
    )
    assert [i["status"] for i in shown["items"]] == ["cancelled"]


def test_max_results_is_capped_and_must_be_positive(carol: Resource, listing_calendar: str) -> None:
    assert len(
        carol.events().list(calendarId=listing_calendar, maxResults=99999).execute()["items"]
    )
    with pytest.raises(HttpError) as caught:
        carol.events().list(calendarId=listing_calendar, maxResults=0).execute()
    assert caught.value.resp.status == 400


# ---- recurrence ------------------------------------------------------------------------------


def test_recurring_events_expand_with_exdate_and_exceptions(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    master = (
        api.events()
        .insert(
            calendarId=ALICE,
            body={
                "id": "series0001",
                "summary": "standup",
                "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2027-03-01T09:30:00", "timeZone": "Europe/Berlin"},
                "recurrence": [
                    "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
                    "EXDATE;TZID=Europe/Berlin:20270308T090000",
                ],
            },
        )
        .execute()
    )
    window = {"timeMin": "2027-03-01T00:00:00Z", "timeMax": "2027-04-30T00:00:00Z"}
    masters = api.events().list(calendarId=ALICE, **window).execute()["items"]
    assert [m["id"] for m in masters if m["id"].startswith("series")] == ["series0001"]
    instances = (
        api.events()
        .list(calendarId=ALICE, singleEvents=True, orderBy="startTime", **window)
        .execute()["items"]
    )
    series = [i for i in instances if i.get("recurringEventId") == "series0001"]
    # six Mondays minus the EXDATE; 09:00 Berlin is 08:00Z before and 07:00Z after 28 March
    assert [i["id"] for i in series] == [
        "series0001_20270301T080000Z",
        "series0001_20270315T080000Z",
        "series0001_20270322T080000Z",
        "series0001_20270329T070000Z",
        "series0001_20270405T070000Z",
    ]
    assert all(i["iCalUID"] == master["iCalUID"] for i in series)
    assert series[0]["originalStartTime"]["timeZone"] == "Europe/Berlin"
    api.events().patch(
        calendarId=ALICE,
        eventId="series0001_20270315T080000Z",
        body={
            "start": {"dateTime": "2027-03-15T11:00:00+01:00"},
            "end": {"dateTime": "2027-03-15T11:30:00+01:00"},
        },
    ).execute()
    api.events().delete(calendarId=ALICE, eventId="series0001_20270322T080000Z").execute()
    again = (
        api.events()
        .list(calendarId=ALICE, singleEvents=True, orderBy="startTime", **window)
        .execute()["items"]
    )
    series = [i for i in again if i.get("recurringEventId") == "series0001"]
    assert len(series) == 4
    moved = next(i for i in series if i["id"] == "series0001_20270315T080000Z")
    assert moved["start"]["dateTime"] == "2027-03-15T11:00:00+01:00"
    assert moved["originalStartTime"]["dateTime"].startswith("2027-03-15T09:00:00")
    # without singleEvents the cancelled exception is still listed next to its master
    plain = api.events().list(calendarId=ALICE, **window).execute()["items"]
    assert any(
        i["id"] == "series0001_20270322T080000Z" and i["status"] == "cancelled" for i in plain
    )


def test_all_day_events_and_transparency_in_free_busy(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    fake.add_calendar("dave@acme.test", timezone="Europe/Berlin")
    fake.insert(
        "dave@acme.test",
        {
            "start": {"date": "2027-05-03"},
            "end": {"date": "2027-05-04"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
        },
    )
    fake.insert(
        "dave@acme.test",
        _timed("2027-05-05T10:00:00Z", "2027-05-05T11:00:00Z", transparency="transparent"),
    )
    answer = (
        api.freebusy()
        .query(
            body={
                "timeMin": "2027-05-01T00:00:00Z",
                "timeMax": "2027-05-10T00:00:00Z",
                "items": [{"id": "dave@acme.test"}],
            }
        )
        .execute()
    )
    # two all-day days in Berlin, merged into one period; the transparent event is not busy
    assert answer["calendars"]["dave@acme.test"]["busy"] == [
        {"start": "2027-05-02T22:00:00Z", "end": "2027-05-04T22:00:00Z"}
    ]


# ---- freeBusy --------------------------------------------------------------------------------


def test_free_busy_merges_clips_and_reports_unknown_calendars(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    fake.add_calendar("erin@acme.test")
    fake.insert("erin@acme.test", _timed("2027-06-01T08:00:00Z", "2027-06-01T10:00:00Z"))
    fake.insert("erin@acme.test", _timed("2027-06-01T09:00:00Z", "2027-06-01T11:00:00Z"))
    cancelled = fake.insert(
        "erin@acme.test", _timed("2027-06-01T13:00:00Z", "2027-06-01T14:00:00Z")
    )
    fake.delete("erin@acme.test", cancelled["id"])
    answer = (
        api.freebusy()
        .query(
            body={
                "timeMin": "2027-06-01T08:30:00Z",
                "timeMax": "2027-06-02T00:00:00Z",
                "items": [{"id": "erin@acme.test"}, {"id": "nobody@acme.test"}],
            }
        )
        .execute()
    )
    assert answer["calendars"]["erin@acme.test"]["busy"] == [
        {"start": "2027-06-01T08:30:00Z", "end": "2027-06-01T11:00:00Z"}
    ]
    assert answer["calendars"]["nobody@acme.test"]["errors"] == [
        {"domain": "global", "reason": "notFound"}
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"timeMin": "2027-06-02T00:00:00Z", "timeMax": "2027-06-01T00:00:00Z"}, "timeRangeEmpty"),
        (
            {"timeMin": "2027-01-01T00:00:00Z", "timeMax": "2027-06-01T00:00:00Z"},
            "timeRangeTooLong",
        ),
        (
            {
                "timeMin": "2027-06-01T00:00:00Z",
                "timeMax": "2027-06-02T00:00:00Z",
                "items": [{"id": f"u{n}@acme.test"} for n in range(51)],
            },
            "tooManyCalendarsRequested",
        ),
    ],
)
def test_free_busy_limits(api: Resource, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(HttpError) as caught:
        api.freebusy().query(body={"items": [{"id": ALICE}], **body}).execute()
    assert caught.value.resp.status == 400 and _reason(caught.value) == reason


# ---- faults ----------------------------------------------------------------------------------


def test_injected_rate_limits_in_googles_shape(fake: GoogleCalendarFake, api: Resource) -> None:
    fake.fail(method="GET", path=r"/events$", status=403, reason="rateLimitExceeded")
    with pytest.raises(HttpError) as limited:
        api.events().list(calendarId=ALICE).execute()
    error = json.loads(limited.value.content)["error"]
    assert limited.value.resp.status == 403 and error["code"] == 403
    assert error["errors"][0] == {
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
        "message": "Rate Limit Exceeded",
    }
    fake.fail(path=r"/events$", status=429, retry_after=7, times=2)
    for _ in range(2):
        with pytest.raises(HttpError) as throttled:
            api.events().list(calendarId=ALICE).execute()
        assert throttled.value.resp.status == 429 and throttled.value.resp["retry-after"] == "7"
    assert api.events().list(calendarId=ALICE).execute()["kind"] == "calendar#events"


# ---- rooms -----------------------------------------------------------------------------------


def test_a_free_room_accepts_and_gets_the_event(fake: GoogleCalendarFake, api: Resource) -> None:
    body = _timed(
        "2027-07-01T09:00:00Z",
        "2027-07-01T10:00:00Z",
        id="calpoolroom01",
        attendees=[{"email": ROOM, "resource": True}],
    )
    created = api.events().insert(calendarId=ALICE, body=body).execute()
    assert created["attendees"][0]["responseStatus"] == "needsAction"

    def accepted() -> bool:
        event = api.events().get(calendarId=ALICE, eventId="calpoolroom01").execute()
        return bool(event["attendees"][0]["responseStatus"] == "accepted")

    _eventually(accepted)
    copy = fake.event(ROOM, "calpoolroom01")
    assert copy is not None and copy["iCalUID"] == created["iCalUID"]
    assert copy["status"] == "confirmed"
    room_view = api.events().list(calendarId=ROOM, timeMin="2027-07-01T00:00:00Z").execute()
    assert [i["id"] for i in room_view["items"]] == ["calpoolroom01"]
    api.events().delete(calendarId=ALICE, eventId="calpoolroom01").execute()
    assert fake.event(ROOM, "calpoolroom01")["status"] == "cancelled"  # type: ignore[index]


def test_a_busy_room_declines_and_a_silent_one_never_answers(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    fake.insert(BUSY_ROOM, _timed("2027-07-02T09:30:00Z", "2027-07-02T10:30:00Z"))
    api.events().insert(
        calendarId=ALICE,
        body=_timed(
            "2027-07-02T09:00:00Z",
            "2027-07-02T10:00:00Z",
            id="calpoolroom02",
            attendees=[
                {"email": BUSY_ROOM, "resource": True},
                {"email": QUIET_ROOM, "resource": True},
            ],
        ),
    ).execute()

    def answers() -> dict[str, str] | None:
        event = fake.event(ALICE, "calpoolroom02") or {}
        status = {a["email"]: a["responseStatus"] for a in event.get("attendees", [])}
        return status if status[BUSY_ROOM] != "needsAction" else None

    assert _eventually(answers) == {BUSY_ROOM: "declined", QUIET_ROOM: "needsAction"}
    assert fake.event(BUSY_ROOM, "calpoolroom02") is None
    fake.answer_as_room(ALICE, "calpoolroom02", QUIET_ROOM, "accepted")
    assert fake.event(QUIET_ROOM, "calpoolroom02")["status"] == "confirmed"  # type: ignore[index]


def test_rooms_are_readable_but_not_writable(api: Resource) -> None:
    with pytest.raises(HttpError) as caught:
        api.events().insert(
            calendarId=ROOM, body=_timed("2027-07-03T09:00:00Z", "2027-07-03T10:00:00Z")
        ).execute()
    assert caught.value.resp.status == 403 and _reason(caught.value) == "requiredAccessLevel"


# ---- push ------------------------------------------------------------------------------------


class _Receiver:
    """An http webhook receiver on loopback that records what it gets."""

    def __init__(self) -> None:
        received: list[dict[str, str]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    running = _Receiver()
    yield running
    running.close()


_flushes = iter(range(1, 1000))


def _flush_deliveries(fake: GoogleCalendarFake, api: Resource, receiver: _Receiver) -> None:
    """Wait until every delivery queued so far is made: the fake posts one at a time, in
    order, so once a new channel's ``sync`` arrived, anything queued before it was sent."""
    channel_id = f"ch-flush-{next(_flushes)}"
    channel = (
        api.events()
        .watch(
            calendarId=ALICE, body={"id": channel_id, "type": "web_hook", "address": receiver.url}
        )
        .execute()
    )
    _eventually(lambda: any(r["x-goog-channel-id"] == channel_id for r in receiver.received))
    api.channels().stop(body={"id": channel_id, "resourceId": channel["resourceId"]}).execute()


def test_watch_sends_sync_then_exists_until_stopped(
    fake: GoogleCalendarFake, api: Resource, receiver: _Receiver
) -> None:
    with pytest.raises(HttpError) as refused:
        api.events().watch(
            calendarId=ALICE, body={"id": "ch-http", "type": "web_hook", "address": receiver.url}
        ).execute()
    assert _reason(refused.value) == "push.webhookUrlNotHttps"
    fake.allow_http_webhooks = True
    try:
        channel = (
            api.events()
            .watch(
                calendarId=ALICE,
                body={
                    "id": "ch-1",
                    "type": "web_hook",
                    "address": receiver.url,
                    "token": "secret-1",
                    "params": {"ttl": "3600"},
                },
            )
            .execute()
        )
        assert channel["kind"] == "api#channel" and channel["id"] == "ch-1"
        expires_in = int(channel["expiration"]) / 1000 - fake.clock().timestamp()
        assert 3500 < expires_in <= 3600
        first = _eventually(lambda: receiver.received[:1])[0]
        assert first["x-goog-resource-state"] == "sync"
        assert first["x-goog-channel-id"] == "ch-1" and first["x-goog-channel-token"] == "secret-1"
        assert first["x-goog-resource-id"] == channel["resourceId"]
        assert first["x-goog-resource-uri"] == channel["resourceUri"]
        assert first["x-goog-message-number"] == "1"
        fake.insert(ALICE, _timed("2027-08-01T09:00:00Z", "2027-08-01T10:00:00Z"))
        second = _eventually(lambda: receiver.received[1:2])[0]
        assert second["x-goog-resource-state"] == "exists"
        assert second["x-goog-message-number"] == "2"
        with pytest.raises(HttpError) as duplicate:
            api.events().watch(
                calendarId=ALICE, body={"id": "ch-1", "type": "web_hook", "address": receiver.url}
            ).execute()
        assert duplicate.value.resp.status == 400
        api.channels().stop(body={"id": "ch-1", "resourceId": channel["resourceId"]}).execute()
        assert fake.channels["ch-1"]["stopped"]
        posted = len(fake.deliveries)
        fake.insert(ALICE, _timed("2027-08-02T09:00:00Z", "2027-08-02T10:00:00Z"))
        with pytest.raises(HttpError) as stopped:
            api.channels().stop(body={"id": "ch-1", "resourceId": channel["resourceId"]}).execute()
        assert stopped.value.resp.status == 404
        _flush_deliveries(fake, api, receiver)
        assert [d[1]["X-Goog-Channel-ID"] for d in fake.deliveries[posted:]] == ["ch-flush-1"]
    finally:
        fake.allow_http_webhooks = False


def test_an_expired_channel_delivers_nothing(
    fake: GoogleCalendarFake, api: Resource, receiver: _Receiver
) -> None:
    fake.allow_http_webhooks = True
    try:
        api.events().watch(
            calendarId=ALICE, body={"id": "ch-2", "type": "web_hook", "address": receiver.url}
        ).execute()
        _eventually(lambda: receiver.received[:1])
        fake.expire_channel("ch-2")
        fake.insert(ALICE, _timed("2027-08-03T09:00:00Z", "2027-08-03T10:00:00Z"))
        _flush_deliveries(fake, api, receiver)
        assert [r["x-goog-channel-id"] for r in receiver.received] == ["ch-2", "ch-flush-2"]
    finally:
        fake.allow_http_webhooks = False


def test_a_fault_can_match_the_later_pages_of_a_listing_only(
    fake: GoogleCalendarFake, api: Resource
) -> None:
    calendar = "paged-410@acme.test"
    fake.add_calendar(calendar, owner=ALICE)
    for day in range(1, 4):
        fake.insert(calendar, _timed(f"2027-09-0{day}T09:00:00Z", f"2027-09-0{day}T10:00:00Z"))
    fake.fail(method="GET", path=r"/events$", query=r"pageToken=", status=410,
              reason="fullSyncRequired", message="Sync token is no longer valid.")
    first = api.events().list(calendarId=calendar, maxResults=2).execute()
    assert len(first["items"]) == 2 and "nextPageToken" in first  # the first page passes
    with pytest.raises(HttpError) as gone:
        api.events().list(calendarId=calendar, maxResults=2,
                          pageToken=first["nextPageToken"]).execute()
    assert gone.value.resp.status == 410 and _reason(gone.value) == "fullSyncRequired"
    items, _ = _all_pages(api, calendarId=calendar, maxResults=2)  # used up: answers again
    assert len(items) == 3


def test_a_held_answer_comes_late_for_a_request_already_carried_out(
    fake: GoogleCalendarFake, key: dict[str, Any]
) -> None:
    own = _service(fake, key)  # its own connection: the shared one is not thread-safe
    fake.fail(method="POST", path=r"/events$", status=200, hold=1.0)
    body = _timed("2027-09-10T09:00:00Z", "2027-09-10T10:00:00Z", id="heldback0001")
    answered: list[dict[str, Any]] = []
    call = threading.Thread(
        target=lambda: answered.append(own.events().insert(calendarId=ALICE, body=body).execute())
    )
    began = time.monotonic()
    call.start()
    _eventually(lambda: fake.event(ALICE, "heldback0001"))  # landed on Google's side …
    assert call.is_alive() and not answered  # … while the client still waits for the answer
    call.join(timeout=10)
    assert time.monotonic() - began >= 1.0
    assert answered[0]["id"] == "heldback0001"
    with pytest.raises(HttpError) as duplicate:  # a retry with the same id
        own.events().insert(calendarId=ALICE, body=body).execute()
    assert duplicate.value.resp.status == 409 and _reason(duplicate.value) == "duplicate"


def test_clear_faults_ends_a_storm(fake: GoogleCalendarFake, api: Resource) -> None:
    bob = _service(fake, fake.service_account_info(), subject=BOB)
    fake.fail(path=r"/calendars/bob@acme\.test/", status=429, retry_after=1, times=1000)
    for _ in range(3):
        with pytest.raises(HttpError) as throttled:
            bob.events().list(calendarId=BOB).execute()
        assert throttled.value.resp.status == 429 and throttled.value.resp["retry-after"] == "1"
    assert api.events().list(calendarId=ALICE).execute()["kind"] == "calendar#events"
    fake.clear_faults()
    assert bob.events().list(calendarId=BOB).execute()["kind"] == "calendar#events"


def test_a_channel_lives_no_longer_than_the_fake_grants(
    fake: GoogleCalendarFake, api: Resource, receiver: _Receiver
) -> None:
    fake.allow_http_webhooks = True
    fake.channel_lifetime = timedelta(seconds=30)
    try:
        channel = (
            api.events()
            .watch(calendarId=ALICE, body={"id": "ch-short", "type": "web_hook",
                                           "address": receiver.url, "params": {"ttl": "3600"}})
            .execute()
        )
        expires_in = int(channel["expiration"]) / 1000 - fake.clock().timestamp()
        assert 25 < expires_in <= 30  # the ttl asked for was an hour
        _eventually(lambda: receiver.received[:1])
        fake.advance(31)
        fake.insert(ALICE, _timed("2027-09-11T09:00:00Z", "2027-09-11T10:00:00Z"))
        _flush_deliveries(fake, api, receiver)
        first, *later = [r["x-goog-channel-id"] for r in receiver.received]
        assert first == "ch-short" and "ch-short" not in later  # nothing once it ran out
    finally:
        fake.allow_http_webhooks = False
        fake.channel_lifetime = MAX_TTL
