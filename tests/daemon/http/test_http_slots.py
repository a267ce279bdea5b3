"""``GET /v1/event-types/{key}/slots`` and ``GET /v1/event-types``.

Alice works 09:00-12:00 Berlin time on weekdays; consult is 30 minutes on a
30-minute grid with one room of ``small``.  Now is Thursday 2027-03-25
08:00 in Berlin, so the default week runs to Thursday 2027-04-01 09:00 CEST
and crosses the spring-forward change of Sunday 2027-03-28.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from tests.daemon.http.conftest import CONFIG, NOW, MakeSite, Site, assert_problem

SLOTS = "/v1/event-types/consult/slots"


def slots_of(site: Site, url: str = SLOTS, **params: str) -> dict[str, Any]:
    response = site.get(url, params=params)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def starts(document: dict[str, Any]) -> list[str]:
    return [slot["start"] for slot in document["slots"]]


def test_default_week_starts_now_in_the_owners_zone_across_the_clock_change(site: Site) -> None:
    document = slots_of(site)
    assert document["event_type"] == "consult"
    assert document["timezone"] == "Europe/Berlin"
    found = starts(document)
    # Thu, Fri (CET), Mon, Tue, Wed (CEST); Thursday 09:00 CEST is the end, excluded.
    assert len(found) == 5 * 6
    assert found[:6] == [f"2027-03-25T{h}:00+01:00" for h in
                         ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")]
    assert found[6] == "2027-03-26T09:00:00+01:00"
    assert found[12] == "2027-03-29T09:00:00+02:00"
    assert found[-1] == "2027-03-31T11:30:00+02:00"
    for slot in document["slots"]:
        assert slot["rooms_available"] == {"small": ["room-a", "room-b"]}


def test_slot_end_is_start_plus_duration(site: Site) -> None:
    for slot in slots_of(site)["slots"]:
        assert slot["end"][:11] == slot["start"][:11]
        assert slot["end"][-6:] == slot["start"][-6:]
    first = slots_of(site)["slots"][0]
    assert (first["start"], first["end"]) == ("2027-03-25T09:00:00+01:00",
                                              "2027-03-25T09:30:00+01:00")


def test_a_busy_room_leaves_the_others_and_a_busy_owner_removes_the_slot(site: Site) -> None:
    site.busy("room-a", ("2027-03-25T08:00:00+00:00", "2027-03-25T09:00:00+00:00"))
    site.busy("room-b", ("2027-03-25T10:00:00+00:00", "2027-03-25T10:30:00+00:00"))
    site.busy("alice", ("2027-03-25T09:00:00+00:00", "2027-03-25T09:30:00+00:00"))
    document = slots_of(site, end="2027-03-26")
    rooms = {slot["start"][11:16]: slot["rooms_available"]["small"]
             for slot in document["slots"]}
    assert rooms == {
        "09:00": ["room-b"],
        "09:30": ["room-b"],
        # 10:00: alice is busy
        "10:30": ["room-a", "room-b"],
        "11:00": ["room-a"],
        "11:30": ["room-a", "room-b"],
    }


def test_rooms_first_lists_only_the_first_free_room_of_each_pool(site: Site) -> None:
    site.busy("room-a", ("2027-03-25T08:00:00+00:00", "2027-03-25T09:00:00+00:00"))
    every = slots_of(site, url="/v1/event-types/team/slots", end="2027-03-26")
    first = slots_of(site, url="/v1/event-types/team/slots", end="2027-03-26", rooms="first")
    assert starts(first) == starts(every) and every["slots"]
    for listed, whole in zip(first["slots"], every["slots"], strict=True):
        assert listed["rooms_available"] == {
            pool: rooms[:1] for pool, rooms in whole["rooms_available"].items()}
    assert {tuple(slot["rooms_available"]["small"]) for slot in first["slots"]} == {
        ("room-a",), ("room-b",)}  # room-b where room-a is busy
    # The kept answer is encoded once per room list: asking all again is whole.
    assert slots_of(site, url="/v1/event-types/team/slots", end="2027-03-26") == every
    answer_validator(site, "/v1/event-types/{key}/slots").validate(first)


def test_an_unknown_room_list_is_422_naming_rooms(site: Site) -> None:
    response = site.get(SLOTS, params={"rooms": "some"})
    document = assert_problem(response, 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == ["rooms"]


def test_asked_zone_sets_the_offsets_and_reads_local_times(site: Site) -> None:
    document = slots_of(site, timezone="America/New_York", start="2027-03-29T03:00",
                        end="2027-03-29T04:00")
    assert document["timezone"] == "America/New_York"
    # 03:00 and 03:30 in New York (EDT) are 09:00 and 09:30 in Berlin (CEST).
    assert starts(document) == ["2027-03-29T03:00:00-04:00", "2027-03-29T03:30:00-04:00"]


def test_a_date_is_the_start_of_that_day_in_the_zone(site: Site) -> None:
    document = slots_of(site, start="2027-03-29", end="2027-03-30")
    assert starts(document)[0] == "2027-03-29T09:00:00+02:00"
    assert starts(document)[-1] == "2027-03-29T11:30:00+02:00"


def test_range_is_half_open_on_slot_starts(site: Site) -> None:
    document = slots_of(site, start="2027-03-29T09:30:00+02:00", end="2027-03-29T11:00:00+02:00")
    assert starts(document) == ["2027-03-29T09:30:00+02:00", "2027-03-29T10:00:00+02:00",
                                "2027-03-29T10:30:00+02:00"]


def test_an_unencoded_plus_in_the_offset_is_read_as_one(site: Site) -> None:
    response = site.get(SLOTS + "?start=2027-03-29T09:30+02:00&end=2027-03-29T10:30+02:00")
    assert response.status_code == 200, response.text
    assert starts(response.json()) == ["2027-03-29T09:30:00+02:00", "2027-03-29T10:00:00+02:00"]


def test_utc_instants_are_accepted(site: Site) -> None:
    document = slots_of(site, start="2027-03-29T07:00:00Z", end="2027-03-29T08:00:00Z")
    assert starts(document) == ["2027-03-29T09:00:00+02:00", "2027-03-29T09:30:00+02:00"]


def test_a_range_of_exactly_the_horizon_is_allowed(site: Site) -> None:
    document = slots_of(site, start="2027-03-29", end="2027-04-28")  # 30 days, all CEST
    # Slots stop at now + horizon (Saturday 2027-04-24 09:00), not at the range's end.
    assert starts(document)[-1] == "2027-04-23T11:30:00+02:00"


def test_default_end_stops_at_a_horizon_shorter_than_a_week(make_site: MakeSite) -> None:
    site = make_site(CONFIG.replace('horizon = "30d"', 'horizon = "2d"'))
    found = starts(slots_of(site))
    assert found[0] == "2027-03-25T09:00:00+01:00"
    assert found[-1] == "2027-03-26T11:30:00+01:00"


def test_other_event_types_join_persons_and_pools(site: Site) -> None:
    site.busy("room-c", ("2027-03-29T07:00:00+00:00", "2027-03-29T08:00:00+00:00"))
    document = slots_of(site, "/v1/event-types/team/slots", start="2027-03-29",
                        end="2027-03-30")
    assert starts(document) == ["2027-03-29T10:00:00+02:00", "2027-03-29T10:30:00+02:00",
                                "2027-03-29T11:00:00+02:00"]
    assert document["slots"][0]["rooms_available"] == {
        "small": ["room-a", "room-b"], "large": ["room-c"]}


def test_stale_calendars_are_listed_with_reason_and_last_sync(site: Site) -> None:
    site.synced("alice")
    site.synced("room-a", at=NOW - timedelta(hours=1))
    site.synced("room-b", at=NOW - timedelta(minutes=5))
    site.failed("room-b")
    document = slots_of(site)
    assert document["stale_calendars"] == [
        {"calendar": "room-a", "last_synced": "2027-03-25T07:00:00+01:00", "reason": "stale"},
        {"calendar": "room-b", "last_synced": "2027-03-25T07:55:00+01:00", "reason": "failed"},
    ]


def test_never_synced_calendars_of_the_event_type_only(site: Site) -> None:
    site.synced("alice", "room-a", "room-b")
    assert slots_of(site)["stale_calendars"] == []
    team = slots_of(site, "/v1/event-types/team/slots")
    assert team["stale_calendars"] == [
        {"calendar": "bob", "last_synced": None, "reason": "never_synced"},
        {"calendar": "room-c", "last_synced": None, "reason": "never_synced"},
    ]


def test_unknown_event_type_is_404(site: Site) -> None:
    response = site.get("/v1/event-types/nope/slots")
    document = assert_problem(response, 404, "/problems/unknown-event-type")
    assert document["event_type"] == "nope"


@pytest.mark.parametrize(("params", "names"), [
    ({"timezone": "Mars/Olympus"}, ["timezone"]),
    ({"timezone": ""}, ["timezone"]),
    ({"start": "2027-03-29", "end": "2027-03-28"}, ["end"]),
    ({"start": "2027-03-29", "end": "2027-03-29"}, ["end"]),
    ({"start": "2027-03-29", "end": "2027-04-29"}, ["end"]),  # 31 days > 30d horizon
    ({"start": "tomorrow"}, ["start"]),
    ({"start": "2027-02-30", "end": "soon"}, ["start", "end"]),
    ({"start": "0001-01-01"}, ["start"]),
    ({"start": "9999-12-31T23:59:59+00:00"}, ["start"]),
    ({"end": "0001-01-01T00:00:00+14:00"}, ["end"]),
    ({"start": "2027-03-29T25:00"}, ["start"]),
])
def test_bad_ranges_and_zones_are_422_naming_each_parameter(
        site: Site, params: dict[str, str], names: list[str]) -> None:
    response = site.get(SLOTS, params=params)
    document = assert_problem(response, 422, "/problems/validation")
    assert [error["name"] for error in document["errors"]] == names
    assert all(error["in"] == "query" and error["detail"] for error in document["errors"])


def test_range_longer_than_the_horizon_says_so(site: Site) -> None:
    response = site.get(SLOTS, params={"start": "2027-03-29", "end": "2027-05-01"})
    document = assert_problem(response, 422, "/problems/validation")
    assert "horizon (30d)" in document["errors"][0]["detail"]


def test_event_types_document(site: Site) -> None:
    response = site.get("/v1/event-types")
    assert response.status_code == 200
    assert response.json() == {"event_types": [
        {"key": "consult", "title": "Consultation with {attendee_name}", "duration": "30m",
         "owner": "alice", "with": [],
         "pools": {"small": [{"key": "room-a", "name": "Room A (4 seats)", "capacity": 4},
                             {"key": "room-b", "name": "room-b", "capacity": None}]}},
        {"key": "team", "title": "Team meeting", "duration": "1h", "owner": "alice",
         "with": ["bob"],
         "pools": {"small": [{"key": "room-a", "name": "Room A (4 seats)", "capacity": 4},
                             {"key": "room-b", "name": "room-b", "capacity": None}],
                   "large": [{"key": "room-c", "name": "room-c", "capacity": None}]}},
    ]}


def answer_validator(site: Site, path: str) -> Draft202012Validator:
    """A validator for the 200 answer of ``path`` as the OpenAPI document
    describes it."""
    openapi = site.get("/openapi.json", token=None).json()
    schema = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]
    return Draft202012Validator({**schema, "components": openapi["components"]})


def test_slots_answer_matches_the_openapi_schema(site: Site) -> None:
    site.synced("alice")
    site.failed("room-a")
    document = slots_of(site)
    assert document["slots"] and document["stale_calendars"]
    validator = answer_validator(site, "/v1/event-types/{key}/slots")
    validator.validate(document)
    # The schema has teeth: a slot without its rooms, or an unknown reason, fails.
    broken = {**document, "slots": [{"start": "x", "end": "y"}]}
    with pytest.raises(ValidationError):
        validator.validate(broken)
    wrong = {**document, "stale_calendars": [{"calendar": "a", "last_synced": None,
                                              "reason": "sleepy"}]}
    with pytest.raises(ValidationError):
        validator.validate(wrong)


def test_event_types_answer_matches_the_openapi_schema(site: Site) -> None:
    validator = answer_validator(site, "/v1/event-types")
    document = site.get("/v1/event-types").json()
    validator.validate(document)
    with pytest.raises(ValidationError):
        validator.validate({"event_types": [{"key": "consult"}]})
