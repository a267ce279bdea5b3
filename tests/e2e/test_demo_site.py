"""The running demo over HTTP: the sample site's event types and slots, and
an edit made on its CalDAV server reaching the slot answer."""

from __future__ import annotations

import subprocess
import time
import tomllib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.e2e.conftest import CALPOOL, RunningDemo, environment

BERLIN = ZoneInfo("Europe/Berlin")
POOL = "berlin-rooms"
ROOMS = {"room-rhine", "room-spree", "room-elbe"}
SYNC_SEEN_WITHIN = 30.0  # a `calpool sync`, or else the daemon's 10 s poll


def slots_of(demo: RunningDemo, event_type: str) -> list[dict[str, Any]]:
    with demo.client() as client:
        answer = client.get(f"/v1/event-types/{event_type}/slots")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["stale_calendars"] == []
    slots: list[dict[str, Any]] = document["slots"]
    return slots


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(BERLIN)


def test_the_token_lists_the_sample_event_types(demo: RunningDemo) -> None:
    with demo.client() as client:
        answer = client.get("/v1/event-types")
    anonymous = httpx.get(f"{demo.url}/v1/event-types", trust_env=False, timeout=10)

    assert answer.status_code == 200, answer.text
    types = {entry["key"]: entry for entry in answer.json()["event_types"]}
    assert set(types) == {"consultation", "panel"}
    assert types["consultation"]["owner"] == "alice"
    assert types["panel"]["with"] == ["bob"]
    rooms = {room["key"] for room in types["consultation"]["pools"][POOL]}
    assert rooms == ROOMS
    assert anonymous.status_code == 401


def test_slots_follow_the_sample_busy_time(demo: RunningDemo) -> None:
    consultation = slots_of(demo, "consultation")
    panel = slots_of(demo, "panel")

    assert consultation and panel
    for slot in consultation + panel:
        start, end = local(slot["start"]), local(slot["end"])
        assert start.weekday() < 5 and start.hour >= 9 and (end.hour, end.minute) <= (17, 0)
        assert set(slot["rooms_available"][POOL]) <= ROOMS
    # The rooms' meetings: some slots lack a room.
    assert any(len(slot["rooms_available"][POOL]) < len(ROOMS) for slot in consultation)
    # bob is out of office one whole day: consultation has slots then, panel none.
    consultation_days = {local(slot["start"]).date() for slot in consultation}
    panel_days = {local(slot["start"]).date() for slot in panel}
    assert consultation_days - panel_days
    # alice's 09:00 stand-up recurs each weekday, but one occurrence moved to 12:00.
    starts_by_day: dict[Any, set[str]] = defaultdict(set)
    for slot in consultation:
        start = local(slot["start"])
        starts_by_day[start.date()].add(start.strftime("%H:%M"))
    moved = [day for day, times in starts_by_day.items() if "09:00" in times
             and "12:00" not in times]
    usual = [day for day, times in starts_by_day.items() if "12:00" in times
             and "09:00" not in times]
    assert moved and usual, dict(starts_by_day)


def test_an_event_added_on_the_server_takes_its_room_out_of_the_slot(
    demo: RunningDemo,
) -> None:
    before = slots_of(demo, "consultation")
    slot = next(s for s in before if len(s["rooms_available"][POOL]) >= 2)
    room = slot["rooms_available"][POOL][0]
    config = tomllib.loads(demo.config_path.read_text())
    calendar = config["calendars"][room]
    account_url = config["accounts"][calendar["account"]]["url"]
    put = httpx.put(
        f"{account_url}{calendar['id']}e2e-busy.ics", content=busy_event(slot),
        headers={"Content-Type": "text/calendar"}, trust_env=False, timeout=10,
    )
    assert put.status_code in (201, 204), put.text

    sync = subprocess.run(
        [str(CALPOOL), "--config", str(demo.config_path), "sync", "--calendar", room],
        capture_output=True, text=True, env=environment(), timeout=60, check=False,
    )
    assert sync.returncode == 0, sync.stderr
    deadline = time.monotonic() + SYNC_SEEN_WITHIN
    while True:
        after = {s["start"]: s for s in slots_of(demo, "consultation")}
        changed = after.get(slot["start"])
        if changed is None or room not in changed["rooms_available"][POOL]:
            break
        assert time.monotonic() < deadline, f"{room} is still offered at {slot['start']}"
        time.sleep(0.3)

    others = [r for r in slot["rooms_available"][POOL] if r != room]
    assert changed is not None, "the other rooms were free: the slot stays"
    assert changed["rooms_available"][POOL] == others
    # Slots the event does not touch keep their rooms.
    # (Those starting within minutes may have left the window, which starts now.)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    untouched = [s for s in before if (s["end"] <= slot["start"] or s["start"] >= slot["end"])
                 and datetime.fromisoformat(s["start"]) > soon]
    for earlier in untouched:
        assert after[earlier["start"]]["rooms_available"] == earlier["rooms_available"]


def busy_event(slot: dict[str, Any]) -> bytes:
    def stamp(text: str) -> str:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool e2e//EN\r\nBEGIN:VEVENT\r\n"
        "UID:e2e-busy\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{stamp(slot['start'])}\r\nDTEND:{stamp(slot['end'])}\r\n"
        "SUMMARY:Added on the server\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_the_banner_names_customer_pages_that_answer(demo: RunningDemo) -> None:
    """The demo's consultation is public, and the banner's one-time link books."""
    pages = {}
    for line in demo.stdout_lines:
        for label in ("Customer page:", "One-time link:"):
            if line.strip().startswith(label):
                pages[label] = line.split(label, 1)[1].strip()
    assert pages["Customer page:"] == f"{demo.url}/meet/consultation"
    assert pages["One-time link:"].startswith(f"{demo.url}/book/")
    for url in pages.values():
        answer = httpx.get(url, trust_env=False, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.text.count('name="start"') > 0
        assert answer.headers["content-security-policy"].endswith("base-uri 'none'")
