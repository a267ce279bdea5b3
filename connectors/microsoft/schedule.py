"""Live free/busy through ``POST /users/{id}/calendar/getSchedule``.

At most 20 schedules per call and a span under 62 days (Exchange refuses
more with ``ErrorTimeIntervalTooBig``), so the calendars go in batches of
:data:`MAX_SCHEDULES` and the window in chunks of :data:`MAX_SPAN`.  A
schedule Graph cannot answer for comes back with its own ``error`` inside
the 200 and is reported on its own (``FreeBusy.errors``).  The request is
made as one mailbox of the batch; when Graph does not know that one (404
``ErrorInvalidUser`` for the whole call), it is reported and the rest are
asked as another.
https://learn.microsoft.com/en-us/graph/api/calendar-getschedule
https://learn.microsoft.com/en-us/graph/api/resources/scheduleinformation

Busy intervals come from ``scheduleItems`` (exact times, not the
``availabilityView`` grid), with the account's reading of ``status``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from connectors.microsoft import times
from connectors.microsoft.graph import GraphSession, mailbox_path
from engine.core.model import Interval
from engine.errors import ConnectorError, NotFound, PermanentError
from engine.ports import CalendarRef, FreeBusy

MAX_SCHEDULES = 20
MAX_SPAN = timedelta(days=61)  # under Exchange's 62 days
_NOT_BUSY = frozenset({"free", "workingelsewhere"})


def chunks(window: Interval, span: timedelta = MAX_SPAN) -> list[Interval]:
    """``window`` cut into consecutive pieces no longer than ``span``."""
    pieces = []
    start = window.start
    while start < window.end:
        end = min(window.end, start + span)
        pieces.append(Interval(start, end))
        start = end
    return pieces or [window]


def merged(intervals: Sequence[Interval]) -> tuple[Interval, ...]:
    """Sorted, overlapping and touching intervals joined."""
    out: list[Interval] = []
    for interval in sorted(intervals):
        if out and interval.start <= out[-1].end:
            if interval.end > out[-1].end:
                out[-1] = Interval(out[-1].start, interval.end)
        else:
            out.append(interval)
    return tuple(out)


def _schedule_error(answer: dict[str, Any], calendar: str) -> ConnectorError:
    error = answer.get("error") or {}
    code = str(error.get("responseCode") or "")
    detail = f"getSchedule: {code or 'error'}: {error.get('message') or ''}".rstrip(": ")
    if code in ("ErrorMailRecipientNotFound", "ErrorInvalidUser"):
        return NotFound(detail, calendar=calendar)
    return PermanentError(detail, calendar=calendar)


def free_busy(
    graph: GraphSession,
    calendars: Sequence[CalendarRef],
    window: Interval,
    *,
    run: Callable[[str, Callable[[], list[Any]]], list[Any]],
) -> FreeBusy:
    """Busy intervals of ``calendars`` in ``window``; ``run(calendar_id,
    call)`` runs one request under the connector's retries and mapping."""
    busy: dict[str, list[Interval]] = {c.id: [] for c in calendars}
    errors: dict[str, ConnectorError] = {}
    failed_calls: list[ConnectorError] = []
    unique = list(dict.fromkeys(c.id for c in calendars))
    for first in range(0, len(unique), MAX_SCHEDULES):
        pending = unique[first:first + MAX_SCHEDULES]
        for piece in chunks(window):
            pending = [m for m in pending if m not in errors]
            while pending:
                asker = pending[0]
                try:
                    answers = run(asker, partial(_ask, graph, asker, pending, piece))
                except NotFound as exc:
                    errors[asker] = exc  # Graph does not know the asking mailbox
                    pending = pending[1:]
                    continue
                except ConnectorError as exc:
                    failed_calls.append(exc)
                    errors.update(dict.fromkeys(pending, exc))
                    break
                _collect(answers, pending, piece, graph.account.tentative_is_busy, busy, errors)
                break
    answered = {m: merged(v) for m, v in busy.items() if m not in errors}
    if not answered and failed_calls:
        raise failed_calls[0]
    return FreeBusy(answered, errors)


def _ask(graph: GraphSession, asker: str, mailboxes: list[str], piece: Interval) -> list[Any]:
    body = {
        "schedules": mailboxes,
        "startTime": times.graph_value(piece.start),
        "endTime": times.graph_value(piece.end),
        "availabilityViewInterval": 30,
    }
    answer = graph.json("POST", mailbox_path(asker) + "/calendar/getSchedule", json=body,
                        headers={"Prefer": 'outlook.timezone="UTC"'})
    value = answer.get("value")
    if not isinstance(value, list):
        raise PermanentError("getSchedule answered without a value list")
    return value


def _collect(answers: list[Any], asked: list[str], piece: Interval, tentative_is_busy: bool,
             busy: dict[str, list[Interval]], errors: dict[str, ConnectorError]) -> None:
    by_address = {m.lower(): m for m in asked}
    seen = set()
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        mailbox = by_address.get(str(answer.get("scheduleId") or "").lower())
        if mailbox is None:
            continue
        seen.add(mailbox)
        if answer.get("error"):
            errors[mailbox] = _schedule_error(answer, mailbox)
            continue
        for item in answer.get("scheduleItems") or ():
            status = str(item.get("status") or "busy").lower()
            if status in _NOT_BUSY or (status == "tentative" and not tentative_is_busy):
                continue
            try:
                start, end = times.instant(item.get("start")), times.instant(item.get("end"))
            except times.UnreadableTime as exc:
                errors[mailbox] = PermanentError(f"getSchedule: {exc}", calendar=mailbox)
                break
            clipped = _clip(start, end, piece)
            if clipped is not None:
                busy[mailbox].append(clipped)
    for mailbox in asked:
        if mailbox not in seen:
            errors[mailbox] = PermanentError("getSchedule answered nothing for it",
                                             calendar=mailbox)


def _clip(start: datetime, end: datetime, piece: Interval) -> Interval | None:
    start, end = max(start, piece.start), min(end, piece.end)
    return Interval(start, end) if start < end else None
