"""The slots document: ``IsoWriter`` against the standard library across
DST transitions, and ``slots_document``/``slots_json`` against the plain
per-instant rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import documents
from daemon.documents import IsoWriter, local_iso, slots_document, slots_json
from engine.core.model import EventType, Interval, Slot
from engine.services.availability import SlotAnswer, SlotBlock, SlotRun, StaleCalendar

# DST both ways, half-hour and 45-minute offsets, a 30-minute DST shift,
# negative DST (Dublin), DST moved around Ramadan, sub-minute LMT offsets
# (Amsterdam before 1937, Monrovia until 1972), and UTC.
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham",
         "America/St_Johns", "Australia/Lord_Howe", "Europe/Dublin", "Africa/Casablanca",
         "Europe/Amsterdam", "Africa/Monrovia", "Pacific/Kiritimati", "UTC"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """The instants (to the second) the zone's offset changed, 1900-2040."""
    info = ZoneInfo(zone)
    found = []
    probe = datetime(1900, 1, 1, tzinfo=UTC)
    offset = probe.astimezone(info).utcoffset()
    while probe.year < 2040:
        following = probe + timedelta(days=1)
        if following.astimezone(info).utcoffset() != offset:
            low, high = probe, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(info).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
            offset = following.astimezone(info).utcoffset()
        probe = following
    return tuple(found)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    near = transitions(zone)
    near_one: bool = draw(st.booleans())
    if near and near_one:
        # Within a few hours of a change: gaps, folds and the instants at it.
        base = draw(st.sampled_from(near))
        shift = draw(st.one_of(st.integers(-3, 3).map(lambda s: timedelta(seconds=s)),
                               st.integers(-4 * 3600, 4 * 3600).map(
                                   lambda s: timedelta(seconds=s))))
        instant = base + shift + timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 999])))
    else:
        instant = draw(st.datetimes(datetime(1890, 1, 1), datetime(2100, 1, 1),
                                    timezones=st.just(UTC)))
    # Given in UTC, or in the zone itself (a fold's second occurrence too).
    if draw(st.booleans()):
        instant = instant.astimezone(ZoneInfo(zone))
    return zone, instant


@settings(max_examples=600, deadline=None)
@given(cases=st.lists(zone_and_instant(), min_size=1, max_size=8))
def test_iso_writer_equals_astimezone_isoformat(cases: list[tuple[str, datetime]]) -> None:
    writers: dict[str, IsoWriter] = {}
    for zone, instant in cases:
        # One writer per zone across several instants, as in a document.
        writer = writers.setdefault(zone, IsoWriter(zone))
        assert writer(instant) == instant.astimezone(ZoneInfo(zone)).isoformat()


def test_iso_writer_tells_apart_the_two_occurrences_of_a_fold() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2027, 10, 31, 2, 30, tzinfo=berlin)
    second = first.replace(fold=1)
    assert first == second  # same zone: compared as wall times
    writer = IsoWriter("America/New_York")
    assert [writer(first), writer(second)] == ["2027-10-30T20:30:00-04:00",
                                               "2027-10-30T21:30:00-04:00"]


MEET = EventType(key="meet", title="Meet", duration=timedelta(minutes=30),
                 step=timedelta(minutes=15), owner="alice", pools=("rooms", "desks"))


def answer(slots: tuple[Slot, ...], stale: tuple[StaleCalendar, ...] = ()) -> SlotAnswer:
    window = Interval(datetime(2027, 3, 26, tzinfo=UTC), datetime(2027, 4, 2, tzinfo=UTC))
    return SlotAnswer(MEET, window, slots, stale)


def grid_slots(count: int) -> tuple[Slot, ...]:
    """Slots every 15 minutes from the day before Berlin's spring change."""
    start = datetime(2027, 3, 27, 22, 0, tzinfo=UTC)
    rooms = ("room-a", "room-b", "room-c")
    return tuple(
        Slot(start + k * timedelta(minutes=15), start + k * timedelta(minutes=15)
             + timedelta(minutes=30),
             MappingProxyType({"rooms": rooms[k % 3:], "desks": ("desk-1",) if k % 2 else ()}))
        for k in range(count))


def plain_document(value: SlotAnswer, zone: str) -> dict[str, object]:
    """The slots document written instant by instant with ``local_iso``."""
    return {
        "event_type": value.event_type.key,
        "timezone": zone,
        "slots": [{"start": local_iso(s.start, zone), "end": local_iso(s.end, zone),
                   "rooms_available": {p: list(r) for p, r in s.rooms_available.items()}}
                  for s in value.slots],
        "stale_calendars": [{"calendar": s.calendar,
                             "last_synced": local_iso(s.last_synced, zone),
                             "reason": s.reason} for s in value.stale_calendars],
    }


STALE = (StaleCalendar("room-b", datetime(2027, 3, 27, 23, 59, 59, 5, tzinfo=UTC), "stale"),
         StaleCalendar("room-c", None, "never_synced"))


def test_slots_document_equals_the_plain_rendering() -> None:
    for zone in ["Europe/Berlin", "Asia/Kolkata", "UTC"]:
        for stale in [(), STALE]:
            value = answer(grid_slots(200), stale)
            assert slots_document(value, zone) == plain_document(value, zone)


def test_slots_json_is_the_encoded_document_for_kept_and_new_answers() -> None:
    slots = grid_slots(120)
    # The same slots (one kept answer) with staleness that changed, in two
    # zones, then other slots: each time the encoding of the plain document.
    for value, zone in [(answer(slots), "Europe/Berlin"), (answer(slots, STALE), "Europe/Berlin"),
                        (answer(slots), "America/New_York"), (answer(slots), "Europe/Berlin"),
                        (answer(grid_slots(7), STALE), "Europe/Berlin"), (answer(()), "UTC")]:
        assert slots_json(value, zone) == orjson.dumps(plain_document(value, zone))


def test_slots_json_of_answers_cut_from_kept_days_is_the_encoded_document() -> None:
    """Answers made of runs of day blocks (the slot service's) join each
    slot's kept encoding; the bytes are those of the plain document, for
    runs cut anywhere, blocks shared between answers, and both room lists."""
    slots = grid_slots(300)
    blocks = [SlotBlock(slots[a:b]) for a, b in [(0, 90), (90, 96), (96, 250), (250, 300)]]
    cuts = [[SlotRun(blocks[0], 5, 90), SlotRun(blocks[1], 0, 6), SlotRun(blocks[2], 0, 30)],
            [SlotRun(blocks[0], 40, 41)],
            [SlotRun(blocks[1], 2, 6), SlotRun(blocks[2], 0, 154), SlotRun(blocks[3], 0, 50)],
            [SlotRun(blocks[0], 0, 90), SlotRun(blocks[1], 0, 3)]]
    for zone in ["Europe/Berlin", "America/New_York", "Europe/Berlin"]:
        for runs in cuts:
            cut = tuple(s for run in runs for s in run.block.slots[run.lo:run.hi])
            value = SlotAnswer(MEET, answer(()).window, cut, STALE, runs=tuple(runs))
            assert slots_json(value, zone) == orjson.dumps(plain_document(value, zone))
            again = SlotAnswer(MEET, value.window, cut, (), runs=tuple(runs))
            assert slots_json(again, zone, "first") == orjson.dumps(
                slots_document(again, zone, "first"))


def test_iso_texts_shared_by_writers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "TEXTS_KEPT", 3)
    zone = "Asia/Kathmandu"  # a zone no other test here writes in
    instants = [datetime(2027, 4, 4, tzinfo=UTC) + k * timedelta(minutes=15) for k in range(40)]
    for batch in range(0, 40, 5):
        writer = IsoWriter(zone)
        # A new writer starts from what earlier ones wrote, or from nothing
        # once that grew past the bound; either way the texts are exact.
        assert len(documents._texts_of_zone[zone]) <= 3 + 5
        for instant in instants[batch:batch + 5] + instants[:2]:
            assert writer(instant) == instant.astimezone(ZoneInfo(zone)).isoformat()
