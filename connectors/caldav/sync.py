"""Listing a CalDAV calendar, following its changes, asking its free/busy.

Two ways to follow changes, each with its own cursor spelling:

- ``sc2:<calendar tag>:<token>`` — ``sync-collection`` (RFC 6578): the
  server names the changed and removed members since its token.  The tag
  (a digest of the calendar id) binds the token to its calendar, because a
  server need not: Cyrus's tokens (``data:,<uidvalidity>-<modseq>``) are
  the same for two calendars created in the same second, so another
  calendar's token would be taken.  ``sc1:<token>`` (written before the
  tag) is still read.
- ``et1:<data>`` — etag comparison for servers without it: the cursor
  carries the collection's ctag and every member's etag (compressed); a
  changed ctag leads to a depth-1 PROPFIND and a diff.

The sync report asks the changed members' data too, and those it came
without (and, the etag way, every changed member) are fetched with
``calendar-multiget``; all are expanded locally in the window
(:mod:`connectors.caldav.ical`).  A cursor of
the other way, or one that does not decode, is ``CursorExpired``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import icalendar

from connectors.caldav.account import SyncMethod
from connectors.caldav.dav import CollectionVersion, DavSession, Member, SyncUnsupported
from connectors.caldav.ical import MalformedObject, busy_intervals, instances_in_window
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import CursorExpired

log = logging.getLogger(__name__)

_SYNC_PREFIX = "sc2:"
_UNBOUND_SYNC_PREFIX = "sc1:"  # a server token without its calendar's tag
_ETAG_PREFIX = "et1:"


def encode_etag_cursor(ctag: str, etags: Mapping[str, str]) -> str:
    raw = json.dumps({"c": ctag, "e": dict(sorted(etags.items()))}, separators=(",", ":"))
    return _ETAG_PREFIX + base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode()


def decode_etag_cursor(cursor: str) -> tuple[str, dict[str, str]]:
    """``(ctag, {href: etag})``; ``CursorExpired`` when it does not decode."""
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(cursor.removeprefix(_ETAG_PREFIX)))
        doc = json.loads(raw)
        ctag, etags = doc["c"], doc["e"]
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError) as exc:
        raise CursorExpired("etag cursor does not decode", cursor=cursor) from exc
    if not isinstance(ctag, str) or not isinstance(etags, dict):
        raise CursorExpired("etag cursor has the wrong shape", cursor=cursor)
    return ctag, {str(k): str(v) for k, v in etags.items()}


@dataclass(frozen=True, slots=True)
class CursorVersion:
    """What a cursor says the collection's state was: its sync token
    (``sc`` cursors) or its ctag (``et1`` cursors), to compare with the
    collection's properties now (:meth:`DavSession.collection_versions`)."""

    sync_token: str = ""
    ctag: str = ""

    def is_current(self, now: CollectionVersion) -> bool:
        if self.sync_token:
            return now.sync_token == self.sync_token
        return bool(self.ctag) and now.ctag == self.ctag


def cursor_version(cursor: str, *, calendar_id: str, method: SyncMethod) -> CursorVersion | None:
    """The state ``cursor`` of ``calendar_id`` stands for; ``None`` when it
    does not decode, belongs to another calendar or does not fit ``method``
    (then :meth:`CalendarSync.changes_since` would refuse it, and nothing
    may call it current)."""
    if cursor.startswith((_SYNC_PREFIX, _UNBOUND_SYNC_PREFIX)):
        if method is SyncMethod.ETAG:
            return None
        token = _server_token(cursor, _calendar_tag(calendar_id))
        return CursorVersion(sync_token=token) if token else None
    if cursor.startswith(_ETAG_PREFIX) and method is not SyncMethod.SYNC_COLLECTION:
        try:
            ctag, _ = decode_etag_cursor(cursor)
        except CursorExpired:
            return None
        return CursorVersion(ctag=ctag) if ctag else None
    return None


def _calendar_tag(calendar_id: str) -> str:
    return hashlib.sha256(calendar_id.encode()).hexdigest()[:12]


def _server_token(cursor: str, tag: str) -> str | None:
    """The server's sync token in an ``sc`` cursor; ``None`` when the cursor
    is bound to another calendar's ``tag``."""
    if cursor.startswith(_UNBOUND_SYNC_PREFIX):
        return cursor.removeprefix(_UNBOUND_SYNC_PREFIX)
    bound_to, _, token = cursor.removeprefix(_SYNC_PREFIX).partition(":")
    return token if bound_to == tag else None


class CalendarSync:
    """Sync of one calendar collection over one session."""

    def __init__(
        self, session: DavSession, url: str, *, zone: str, method: SyncMethod, calendar_id: str
    ) -> None:
        self._session = session
        self._url = url
        self._zone = zone
        self._method = method
        self._calendar_id = calendar_id
        self._tag = _calendar_tag(calendar_id)

    @property
    def method(self) -> SyncMethod:
        return self._method

    # -- listing -----------------------------------------------------------

    def list_window(self, window: Interval) -> tuple[ChangeSet, SyncMethod]:
        """The full state of the window, and the way the cursor follows it
        (``auto`` is settled here: etag when sync-collection is refused)."""
        if self._method is not SyncMethod.ETAG:
            try:
                answer = self._session.sync_collection(self._url, "")
            except SyncUnsupported:
                if self._method is SyncMethod.SYNC_COLLECTION:
                    raise
                log.info("caldav: %s offers no sync-collection; comparing etags", self._url)
                self._method = SyncMethod.ETAG
            else:
                fetched = self._with_data(answer.changed)
                unreadable: dict[str, str] = {}
                objects = self._expand(fetched.values(), window, unreadable)
                cursor = self._sync_cursor(answer.token)
                listing = ChangeSet(
                    cursor=cursor, objects=_present(objects), full=True, unreadable=unreadable
                )
                return listing, self._method
        ctag, members = self._session.etags(self._url)
        fetched = self._session.multiget(self._url, (m.href for m in members))
        skipped: dict[str, str] = {}
        objects = self._expand(fetched.values(), window, skipped)
        etags = {m.href: m.etag for m in fetched.values()}
        cursor = encode_etag_cursor(ctag, etags)
        listing = ChangeSet(cursor=cursor, objects=_present(objects), full=True, unreadable=skipped)
        return listing, SyncMethod.ETAG

    def changes_since(self, cursor: str, window: Interval) -> ChangeSet:
        if cursor.startswith((_SYNC_PREFIX, _UNBOUND_SYNC_PREFIX)) and (
            self._method is not SyncMethod.ETAG
        ):
            return self._sync_collection_changes(cursor, window)
        if cursor.startswith(_ETAG_PREFIX) and self._method is not SyncMethod.SYNC_COLLECTION:
            return self._etag_changes(cursor, window)
        raise CursorExpired(
            f"cursor does not fit sync method {self._method.value}",
            cursor=cursor,
            calendar=self._calendar_id,
        )

    def _sync_collection_changes(self, cursor: str, window: Interval) -> ChangeSet:
        token = self._token_of(cursor)
        if not token:
            raise CursorExpired("empty sync token", cursor=cursor, calendar=self._calendar_id)
        try:
            answer = self._session.sync_collection(self._url, token)
        except CursorExpired as exc:
            raise CursorExpired(exc.detail, cursor=cursor, calendar=self._calendar_id) from exc
        fetched = self._with_data(answer.changed)
        unreadable: dict[str, str] = {}
        objects = self._expand(fetched.values(), window, unreadable)
        # Changed but gone by the time of a multiget: deleted meanwhile.
        gone = set(answer.removed) | {m.href for m in answer.changed if m.href not in fetched}
        for href in gone:
            objects[href] = ()
        return ChangeSet(
            cursor=self._sync_cursor(answer.token), objects=objects, full=False,
            unreadable=unreadable,
        )

    def _with_data(self, changed: Iterable[Member]) -> dict[str, Member]:
        """The changed members with their data: as the sync report carried
        it, and by a multiget for those it came without."""
        members = {member.href: member for member in changed}
        # Xandikos answers the report without the data: asked by a multiget.
        fetched = {href: m for href, m in members.items() if m.data}
        missing = [href for href, m in members.items() if not m.data]
        if missing:
            fetched.update(self._session.multiget(self._url, missing))
        return fetched

    def _sync_cursor(self, token: str) -> str:
        return f"{_SYNC_PREFIX}{self._tag}:{token}"

    def _token_of(self, cursor: str) -> str:
        token = _server_token(cursor, self._tag)
        if token is None:
            raise CursorExpired(
                "sync token of another calendar", cursor=cursor, calendar=self._calendar_id
            )
        return token

    def _etag_changes(self, cursor: str, window: Interval) -> ChangeSet:
        old_ctag, old = decode_etag_cursor(cursor)
        if old_ctag and self._session.ctag(self._url) == old_ctag:
            return ChangeSet(cursor=cursor, objects={}, full=False)
        ctag, members = self._session.etags(self._url)
        now = {m.href: m.etag for m in members}
        changed = [href for href, etag in now.items() if old.get(href) != etag or not etag]
        fetched = self._session.multiget(self._url, changed)
        unreadable: dict[str, str] = {}
        objects = self._expand(fetched.values(), window, unreadable)
        gone = (set(old) - set(now)) | (set(changed) - set(fetched))
        for href in gone:
            objects[href] = ()
            now.pop(href, None)
        now.update({m.href: m.etag for m in fetched.values()})
        return ChangeSet(
            cursor=encode_etag_cursor(ctag, now), objects=objects, full=False, unreadable=unreadable
        )

    # -- free/busy ---------------------------------------------------------

    def free_busy(self, window: Interval, *, server_report: bool) -> tuple[Interval, ...]:
        """Busy time from a time-range calendar-query expanded here (the same
        reading as sync); with ``server_report``, the server's own
        free-busy-query where it answers one.

        The query asks a day more on each side: a server that expands a
        series with the wrong UTC offset (Radicale 3.9 across DST) must not
        filter out an object whose instance lies at the window's edge."""
        if server_report:
            answer = self._session.free_busy_query(self._url, window)
            if answer is not None:
                return _parse_free_busy(answer, window)
        return _clip(busy_intervals(self.events_in(window)), window)

    def events_in(self, window: Interval) -> tuple[RemoteEvent, ...]:
        """Every instance in ``window`` from a time-range calendar-query (a
        day wider, as :meth:`free_busy`): a plain read, no cursor."""
        wide = Interval(window.start - timedelta(days=1), window.end + timedelta(days=1))
        members = self._session.calendar_query(self._url, wide)
        return tuple(e for instances in self._expand(members, window).values() for e in instances)

    def _expand(
        self,
        members: Iterable[Member],
        window: Interval,
        unreadable: dict[str, str] | None = None,
    ) -> dict[str, tuple[RemoteEvent, ...]]:
        """Each member's instances; a member whose timing cannot be read is
        reported gone, and named in ``unreadable`` with the reason."""
        objects: dict[str, tuple[RemoteEvent, ...]] = {}
        for member in members:
            try:
                objects[member.href] = instances_in_window(
                    member.data or "",
                    source=member.href,
                    etag=member.etag,
                    window=window,
                    zone=self._zone,
                )
            except MalformedObject as exc:
                # One bad object must not stop the calendar: report it gone
                # (as a full listing would omit it) and say which it is.
                log.warning("caldav: skipping malformed object %s: %s", member.href, exc.reason)
                objects[member.href] = ()
                if unreadable is not None:
                    unreadable[member.href] = exc.reason
        return objects


def _present(objects: Mapping[str, tuple[RemoteEvent, ...]]) -> dict[str, tuple[RemoteEvent, ...]]:
    return {href: instances for href, instances in objects.items() if instances}


def _clip(spans: tuple[Interval, ...], window: Interval) -> tuple[Interval, ...]:
    clipped = (Interval(max(s.start, window.start), min(s.end, window.end)) for s in spans)
    return tuple(s for s in clipped if s.start < s.end)


def _parse_free_busy(text: str, window: Interval) -> tuple[Interval, ...]:
    calendar = icalendar.Calendar.from_ical(text)
    spans: list[Interval] = []
    for component in calendar.walk("VFREEBUSY"):
        values = component.get("FREEBUSY", [])
        for period in values if isinstance(values, list) else [values]:
            if str(period.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            start, end_or_duration = period.dt
            end = (
                start + end_or_duration
                if isinstance(end_or_duration, timedelta)
                else end_or_duration
            )
            start, end = _aware(start), _aware(end)
            start, end = max(start, window.start), min(end, window.end)
            if start < end:
                spans.append(Interval(start, end))
    busy = [RemoteEvent(source="", uid="", start=s.start, end=s.end) for s in spans]
    return busy_intervals(busy)


def _aware(value: datetime) -> datetime:
    # FREEBUSY periods are UTC (RFC 5545 3.8.2.6); a missing Z still means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
