"""The demo's sample site, without servers: its config passes the checks,
and its events read (through the CalDAV connector's parser) as the busy
time the demo describes."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.caldav.ical import instances_in_window
from daemon.config import load_config
from daemon.demo import sample
from engine.core.model import Interval

BERLIN = sample.ZONE
# A Tuesday morning: the first sample day is today.
TUESDAY = datetime(2027, 3, 30, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(("now", "expected"), [
    (TUESDAY, ["2027-03-30", "2027-03-31", "2027-04-01"]),
    (datetime(2027, 4, 2, 20, 0, tzinfo=BERLIN), ["2027-04-02", "2027-04-05", "2027-04-06"]),
    (datetime(2027, 4, 3, 9, 0, tzinfo=BERLIN), ["2027-04-05", "2027-04-06", "2027-04-07"]),
    # 23:30 UTC on a Sunday is already Monday in Berlin.
    (datetime.fromisoformat("2027-04-04T23:30:00+00:00"),
     ["2027-04-05", "2027-04-06", "2027-04-07"]),
], ids=["tuesday", "friday-evening", "saturday", "utc-sunday-late"])
def test_working_days_start_today_and_skip_weekends(now: datetime, expected: list[str]) -> None:
    assert sample.working_days(now, 3) == [date.fromisoformat(day) for day in expected]


def busy_by_calendar(now: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    window = Interval(now - timedelta(days=1), now + timedelta(days=30))
    found: dict[str, list[tuple[datetime, datetime]]] = {}
    for event in sample.sample_events(now):
        instances = instances_in_window(event.ics, source=f"{event.uid}.ics", etag="1",
                                        window=window, zone=sample.ZONE_NAME)
        assert instances, f"{event.uid} yields no instance"
        found.setdefault(event.calendar, []).extend(
            (i.start.astimezone(BERLIN), i.end.astimezone(BERLIN)) for i in instances if i.busy)
    return found


def test_every_sample_calendar_has_busy_time_on_the_coming_days() -> None:
    busy = busy_by_calendar(TUESDAY)

    assert set(busy) == {calendar.key for calendar in sample.CALENDARS}
    for intervals in busy.values():
        assert all(start.date() >= TUESDAY.date() for start, _ in intervals)


def test_the_stand_up_recurs_on_weekdays_with_one_occurrence_moved() -> None:
    alice = busy_by_calendar(TUESDAY)["alice"]
    stand_ups = sorted(start for start, end in alice if end - start == timedelta(minutes=30))

    assert len(stand_ups) == 10
    assert all(start.weekday() < 5 for start in stand_ups)
    moved = [start for start in stand_ups if start.hour == 12]
    assert [start.date() for start in moved] == [date(2027, 3, 31)]
    assert all(start.hour == 9 for start in stand_ups if start not in moved)


def test_bob_is_away_the_whole_second_day() -> None:
    bob = busy_by_calendar(TUESDAY)["bob"]

    whole_day = (datetime(2027, 3, 31, tzinfo=BERLIN), datetime(2027, 4, 1, tzinfo=BERLIN))
    assert whole_day in bob


def test_every_room_is_taken_at_ten_on_the_first_day() -> None:
    busy = busy_by_calendar(TUESDAY)
    ten = datetime(2027, 3, 30, 10, 0, tzinfo=BERLIN)

    for room in sample.ROOMS:
        assert any(start <= ten < end for start, end in busy[room]), room
    assert not any(start <= ten < end for start, end in busy["alice"])


def test_the_config_passes_the_checks(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"demo-token").hexdigest()
    path = tmp_path / "calpool.toml"
    path.write_text(sample.config_text(caldav_home="http://127.0.0.1:5232/calpool/", port=8741,
                                       token_sha256=digest))

    config = load_config(path)

    assert (config.http.host, config.http.port) == ("127.0.0.1", 8741)
    assert config.daemon.database_url.endswith(f"{tmp_path}/calpool.db")
    assert config.sync.poll_interval == timedelta(seconds=10)
    (token,) = config.api_tokens
    assert token.sha256 == digest and set(token.scopes) == {"slots", "book", "admin"}
    assert set(config.event_types) == set(sample.EVENT_TYPES)
    assert config.pools[sample.POOL].members == sample.ROOMS
    assert config.event_types["panel"].persons == ("alice", "bob")
    assert config.calendars["alice"].timezone == sample.ZONE_NAME
