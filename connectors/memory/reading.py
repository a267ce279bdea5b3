"""Stored objects in, :class:`~engine.core.model.RemoteEvent` instances out.

The same reading as the CalDAV connector's (:mod:`connectors.caldav.ical`),
so the contract suite holds for both: an all-day event is busy from local
midnight of its first date to local midnight after its last, in the
calendar's zone; an occurrence of a series is reported with its instance
key (:func:`engine.ports.instance_key` of its original start); transparent
and cancelled events or occurrences are reported with ``busy=False``; a
zero-length event is inside a window when its instant is; instances sort by
start.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from connectors.memory.events import MemoryEvent, When, answers_of
from connectors.memory.provider import StoredObject
from engine.core.intervals import merge
from engine.core.model import Interval, RemoteEvent
from engine.errors import PermanentError
from engine.ports import instance_key


def calendar_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # invalid key, unknown zone, unreadable tzdata
        raise PermanentError(f"calendar zone {name!r} is not an IANA zone") from exc


def instant(value: When, zone: ZoneInfo) -> datetime:
    """A UTC instant; a date is local midnight starting that day in ``zone``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


def instances_in_window(
    stored: StoredObject, *, window: Interval, zone: str
) -> tuple[RemoteEvent, ...]:
    """The instances of one stored object that overlap ``window``, sorted;
    :class:`PermanentError` when the calendar's zone is not an IANA zone."""
    local = calendar_zone(zone)
    found = [e for e in _instances(stored, local) if _inside(e, window)]
    return tuple(sorted(found, key=lambda e: (e.start, e.uid, e.instance)))


def _instances(stored: StoredObject, local: ZoneInfo) -> Iterable[RemoteEvent]:
    event = stored.event
    if not event.is_series:
        yield _remote(stored, event, "", event.start, event.end, busy=_busy(event), zone=local)
        return
    for occurrence in event.occurrences:
        transparent = _inherit(occurrence.transparent, event.transparent)
        cancelled = _inherit(occurrence.cancelled, event.cancelled)
        key = instance_key(instant(occurrence.original_start, local))
        yield _remote(
            stored,
            event,
            key,
            occurrence.start,
            occurrence.end,
            busy=not (transparent or cancelled),
            zone=local,
        )


def _inherit(own: bool | None, series: bool) -> bool:
    return series if own is None else own


def _busy(event: MemoryEvent) -> bool:
    return not (event.transparent or event.cancelled)


def _remote(
    stored: StoredObject,
    event: MemoryEvent,
    instance: str,
    start: When,
    end: When,
    *,
    busy: bool,
    zone: ZoneInfo,
) -> RemoteEvent:
    start_at, end_at = instant(start, zone), instant(end, zone)
    if isinstance(start, date) and not isinstance(start, datetime) and start == end:
        # An all-day event without length still takes its day (RFC 5545
        # 3.6.1: a DTSTART date alone lasts one day).
        end_at = instant(date.fromordinal(start.toordinal() + 1), zone)
    return RemoteEvent(
        source=stored.id,
        uid=event.uid,
        instance=instance,
        start=start_at,
        end=max(start_at, end_at),
        busy=busy,
        etag=stored.etag,
        booking_id=event.booking_id,
        answers=answers_of(event),
    )


def _inside(event: RemoteEvent, window: Interval) -> bool:
    if event.start == event.end:  # zero-length: inside when its instant is
        return window.start <= event.start < window.end
    return event.start < window.end and window.start < event.end


def busy_in_window(events: Iterable[RemoteEvent], window: Interval) -> tuple[Interval, ...]:
    """The busy instances clipped to ``window``, sorted and merged (the
    shape of ``free_busy``'s answer; zero-length ones drop)."""
    spans = (
        Interval(max(e.start, window.start), min(e.end, window.end))
        for e in events
        if e.busy and e.end > e.start
    )
    return tuple(merge(s for s in spans if s.start < s.end))
