"""The JSON documents of interface.md, shared by the CLI and the HTTP hook.

Instants are written ISO 8601 with an offset, in the zone the caller asked
for (slots) or the owner's zone (bookings).

A slots answer lists hundreds of instants and tens of thousands of room
names, and clients ask the same answer again and again: :class:`IsoWriter`
formats each instant once, from pieces formatted once, and
:func:`slots_json` keeps the encoded slot list with the slot service's
kept answer, and each slot's encoding with the day it was cut from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from engine.core.model import Booking, Calendar, Pool, Slot
from engine.core.report import PoolReport
from engine.services.availability import SlotAnswer, SlotBlock
from engine.store import Delivery, StatusChange

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_SECOND_US = 1_000_000


def local_iso(instant: datetime | None, zone: str) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(ZoneInfo(zone)).isoformat()


# ~30 weeks of a 15-minute grid, a few MiB: dict reads and writes are atomic,
# so writers on several threads may share one.
TEXTS_KEPT = 20_000
_texts_of_zone: dict[str, dict[int, str]] = {}


class IsoWriter:
    """``instant.astimezone(zone).isoformat()`` for many instants, exactly.

    The offset of each instant comes from the zone itself (so no rule about
    transitions is assumed); the text is the local date, the time of day and
    the offset, each formatted by the standard library once and reused:
    slots on a grid share a few days, a few dozen times and one or two
    offsets, and most instants recur (a slot's end is a later slot's start).
    The texts of instants are shared by the writers of one zone, since the
    next answer lists mostly the same grid points (up to ``TEXTS_KEPT`` a
    zone, then forgotten at once).
    """

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)
        self._texts = _texts_of_zone.setdefault(zone, {})
        if len(self._texts) > TEXTS_KEPT:
            self._texts.clear()
        self._dates: dict[int, str] = {}
        self._times: dict[int, str] = {}
        self._offsets: dict[timedelta, str] = {}

    def __call__(self, instant: datetime) -> str:
        # Keyed by the instant in µs, not the datetime: two datetimes of one
        # zone that differ only in ``fold`` compare equal but are an hour apart.
        utc_us = (instant - _EPOCH) // _MICROSECOND
        text = self._texts.get(utc_us)
        if text is None:
            offset = instant.astimezone(self._zone).utcoffset()
            assert offset is not None  # a ZoneInfo always has one
            day, clock = divmod(utc_us + offset // _MICROSECOND, _DAY_US)
            date_text = self._dates.get(day) or self._date(day)
            time_text = self._times.get(clock) or self._time(clock)
            offset_text = self._offsets.get(offset) or self._offset(offset)
            text = self._texts[utc_us] = date_text + time_text + offset_text
        return text

    def _date(self, day: int) -> str:
        text = self._dates[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
        return text

    def _time(self, clock: int) -> str:
        seconds, micros = divmod(clock, _SECOND_US)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        # time.isoformat writes microseconds only when there are some, as
        # datetime.isoformat does.
        text = self._times[clock] = time(hour, minute, second, micros).isoformat()
        return text

    def _offset(self, offset: timedelta) -> str:
        # The offset as datetime.isoformat writes it (seconds and
        # microseconds only when present): the tail after the date-time.
        sample = datetime(2000, 1, 1, tzinfo=timezone(offset)).isoformat()
        text = self._offsets[offset] = sample[len("2000-01-01T00:00:00"):]
        return text

    def optional(self, instant: datetime | None) -> str | None:
        return None if instant is None else self(instant)


def slots_document(answer: SlotAnswer, zone: str, rooms: RoomList = "all") -> dict[str, Any]:
    """``GET /v1/event-types/{key}/slots`` and ``calpool slots --json``."""
    writer = IsoWriter(zone)
    return _slots_document(answer, zone, _slot_items(answer.slots, writer, rooms=rooms), writer)


def _slots_document(answer: SlotAnswer, zone: str, slots: object,
                    writer: IsoWriter) -> dict[str, Any]:
    return {
        "event_type": answer.event_type.key,
        "timezone": zone,
        "slots": slots,
        "stale_calendars": [
            {
                "calendar": stale.calendar,
                "last_synced": writer.optional(stale.last_synced),
                "reason": stale.reason,
            }
            for stale in answer.stale_calendars
        ],
    }


RoomList = Literal["all", "first"]
"""How much of each pool's free rooms a slot lists: ``all`` of them in
priority order (the default), or only the ``first`` (what a booking page
needs: whether the pool has a room, and which is tried first).  A week of a
100-room pool is ~456 KiB with ``all`` and ~54 KiB with ``first``: less to
send and to parse for the client; the server's CPU for an afresh answer
hardly changes (bench/slots_http.py)."""


def _slot_items(slots: Iterable[Slot], writer: IsoWriter, *, for_json: bool = False,
                rooms: RoomList = "all") -> list[dict[str, Any]]:
    # orjson writes a tuple as it writes a list, so the encoded document
    # takes the slots' room tuples as they are instead of copying each.
    def listed(available: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
        if rooms == "first":
            return {pool: [free[0]] if free else [] for pool, free in available.items()}
        if for_json:
            return dict(available)
        return {pool: list(free) for pool, free in available.items()}

    return [
        {
            "start": writer(slot.start),
            "end": writer(slot.end),
            "rooms_available": listed(slot.rooms_available),
        }
        for slot in slots
    ]


def slots_json(answer: SlotAnswer, zone: str, rooms: RoomList = "all") -> bytes:
    """``orjson.dumps(slots_document(answer, zone, rooms))``, with the slot
    list encoded once per kept answer, zone and room list (what the HTTP
    hook sends): the encoding is kept in the answer's ``renderings``, which
    live as long as the slot service keeps the answer."""
    writer = IsoWriter(zone)
    key = f"json:{zone}:{rooms}"
    encoded = answer.renderings.get(key)
    if not isinstance(encoded, orjson.Fragment):
        if answer.runs:
            pieces = []
            for run in answer.runs:
                per_slot = _encoded_slots(run.block, key, writer, rooms)
                pieces.extend(per_slot[run.lo:run.hi])
            encoded = orjson.Fragment(b"[" + b",".join(pieces) + b"]")
        else:
            encoded = orjson.Fragment(orjson.dumps(
                _slot_items(answer.slots, writer, for_json=True, rooms=rooms)))
        answer.renderings[key] = encoded
    return orjson.dumps(_slots_document(answer, zone, encoded, writer))


def _encoded_slots(block: SlotBlock, key: str, writer: IsoWriter,
                   rooms: RoomList) -> list[bytes]:
    """Each slot of ``block`` encoded on its own, kept with the block: the
    next window that holds the day joins them instead of encoding again."""
    encoded = block.renderings.get(key)
    if not isinstance(encoded, list):
        encoded = [orjson.dumps(item)
                   for item in _slot_items(block.slots, writer, for_json=True, rooms=rooms)]
        block.renderings[key] = encoded
    return encoded


def pools_document(pools: Mapping[str, Pool], calendars: Mapping[str, Calendar]
                   ) -> dict[str, Any]:
    """``GET /v1/pools``: each pool with its members in priority order."""
    return {"pools": [
        {
            "key": pool.key,
            "members": [{"key": member, "name": calendars[member].name or member,
                         "capacity": calendars[member].capacity} for member in pool.members],
            "assignment": pool.assignment.value,
            "reporting_cycle": pool.reporting_cycle.value,
            "timezone": pool.timezone,
        }
        for pool in pools.values()
    ]}


def pool_report_document(report: PoolReport) -> dict[str, Any]:
    """``GET /v1/pools/{key}/report`` and ``calpool pools report --json``;
    instants in the pool's zone, ``busy_ratio`` rounded to 4 places."""
    zone = report.pool.timezone
    return {
        "pool": report.pool.key,
        "assignment": report.pool.assignment.value,
        "cycle": {"unit": report.pool.reporting_cycle.value,
                  "start": local_iso(report.cycle.start, zone),
                  "end": local_iso(report.cycle.end, zone)},
        "members": [
            {"room": member.room, "received": member.received, "removed": member.removed,
             "reassigned_away": member.reassigned_away, "reassigned_to": member.reassigned_to,
             "last_assigned_at": local_iso(member.last_assigned_at, zone),
             "busy_ratio": round(member.busy_ratio, 4)}
            for member in report.members
        ],
        "total": {"received": report.received, "removed": report.removed},
    }


# An instant inside a history detail ("rescheduled from … to …"), stored in UTC.
_DETAIL_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)")


def _detail_in_zone(detail: str, zone: str) -> str:
    """``detail`` with its instants written in ``zone``, as the rest of the
    document (old entries included: the stored text stays UTC)."""
    return _DETAIL_INSTANT.sub(
        lambda found: local_iso(datetime.fromisoformat(found[0]), zone) or "", detail
    )


def booking_document(booking: Booking, history: list[StatusChange], zone: str, *,
                     deliveries: Sequence[Delivery]) -> dict[str, Any]:
    """The booking document of interface.md, instants in ``zone`` (the
    owner's): ``GET /v1/bookings/{id}`` and ``calpool bookings --json``.
    ``deliveries`` are its delivery records: where each calendar's copy
    stands (written by calpool, or invited and answered)."""
    attendee = booking.attendee
    return {
        "id": booking.id,
        "status": booking.status.value,
        "event_type": booking.event_type,
        "start": local_iso(booking.start, zone),
        "end": local_iso(booking.end, zone),
        "owner": booking.owner,
        "with": list(booking.with_),
        "rooms": dict(booking.rooms),
        "attendee": {"name": attendee.name, "email": attendee.email} if attendee else None,
        "notes": booking.notes,
        "history": [
            {"at": local_iso(change.at, zone), "status": change.status.value,
             "detail": _detail_in_zone(change.detail, zone)}
            for change in history
        ],
        "deliveries": [
            {"calendar": found.calendar, "how": found.how.value, "state": found.state.value,
             "at": local_iso(found.updated_at, zone)}
            for found in deliveries
        ],
    }


def manage_url(public_url: str, token: str) -> str:
    """``manage_url`` of the booking document of the creating request:
    ``<public_url>/manage/<manage_token>``."""
    return f"{public_url}/manage/{token}"
