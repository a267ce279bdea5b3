"""The WebDAV/CalDAV requests calpool sends, over caldav's ``DAVClient``.

caldav's client does the HTTP (niquests), authentication (Basic or Digest,
negotiated on the first 401), TLS verification against ``ca_file`` and the
multistatus parsing; this module writes the few REPORT and PROPFIND bodies
calpool needs and checks each answer's status itself, so that a rejected
sync token, an unsupported report and a missing calendar stay apart.

Hrefs are handled as unquoted paths (``/dav/rooms/spree/a b.ics``), the form
``RemoteEvent.source`` carries; they are quoted again on the way out.

Redirects, and 401/403 refusals explained by a precondition body, are
handled underneath, in :mod:`connectors.caldav.transport`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from caldav.elements import dav
from caldav.lib import error as caldav_error
from caldav.response import DAVResponse

from connectors.caldav.account import CalDAVAccount
from connectors.caldav.failures import status_error
from connectors.caldav.transport import DavTransport
from engine.core.model import Interval
from engine.errors import CursorExpired, NotFound, PermanentError
from engine.ports import RequestObserver

_XML = {"Content-Type": 'application/xml; charset="utf-8"'}
_CALDAV_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
_CTAG = "{http://calendarserver.org/ns/}getctag"
_SYNC_TOKEN = "{DAV:}sync-token"
_MULTIGET_BATCH = 200


def href_path(href: str) -> str:
    """The unquoted path of an href or URL."""
    return unquote(urlsplit(href).path)


@dataclass(frozen=True, slots=True)
class Member:
    """A calendar object as a listing or multiget reports it; ``data`` is
    ``None`` where only the etag was asked for."""

    href: str
    etag: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    changed: tuple[Member, ...]
    removed: tuple[str, ...]
    token: str


@dataclass(frozen=True, slots=True)
class PutAnswer:
    """What a PUT got: ``preconditions`` are the Clark-notation tags of a
    ``DAV:error`` body (empty on success or without one)."""

    status: int
    etag: str
    preconditions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CollectionVersion:
    """What a collection's properties say of its state now: the RFC 6578
    ``DAV:sync-token`` and the CalendarServer ``getctag`` (``""`` where the
    server keeps none or was not asked)."""

    sync_token: str
    ctag: str


class SyncUnsupported(Exception):
    """The server does not offer sync-collection on this calendar (internal:
    ``auto`` then falls back to etag comparison)."""


def _stamp(interval: Interval) -> tuple[str, str]:
    fmt = "%Y%m%dT%H%M%SZ"
    return interval.start.astimezone(UTC).strftime(fmt), interval.end.astimezone(UTC).strftime(fmt)


class DavSession:
    """One account's HTTP session.  Not shared across threads concurrently
    (niquests sessions are not); the connector holds one per thread."""

    def __init__(self, account: CalDAVAccount, *, observe: RequestObserver | None = None) -> None:
        self._http = DavTransport(account, observe=observe)
        # GETs after a PUT whose answer carried no ETag (Cyrus, for events
        # with an ORGANIZER: only a Schedule-Tag), see writes._etag_of.
        self.etag_reads_after_put = 0

    def close(self) -> None:
        self._http.close()

    def located(self, url: str) -> str:
        """``url`` where this session learnt it lives (redirects)."""
        return self._http.located(url)

    def where(self, url: str) -> str:
        """``url`` for an error message: with where it moved, if it did."""
        return self._http.where(url)

    def _send(
        self, method: str, url: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> DAVResponse:
        return self._http.send(method, url, body, headers)

    def _report(self, url: str, body: str, depth: int | None) -> DAVResponse:
        headers = dict(_XML)
        if depth is not None:
            headers["Depth"] = str(depth)
        return self._send("REPORT", url, body, headers)

    # -- listing -----------------------------------------------------------

    def sync_collection(self, url: str, token: str) -> SyncAnswer:
        """Changes since ``token`` (``""``: every member), following
        truncated answers (507) to the end.  A rejected token raises
        ``CursorExpired``; a server without the report ``SyncUnsupported``.

        The changed members' ``calendar-data`` is asked in the same report
        (RFC 6578 3.2 lets it ask any property of the members): one request
        instead of a listing and a multiget, and on Radicale a third less of
        its time for a first listing (``bench/scale.py``).  A member the
        server answers without it (Xandikos) has no ``data``, for a multiget."""
        changed: dict[str, Member] = {}
        removed: set[str] = set()
        current = token
        for _page in range(1000):
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><D:sync-collection {_CALDAV_NS}>'
                f"<D:sync-token>{escape(current)}</D:sync-token><D:sync-level>1</D:sync-level>"
                f"<D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>"
            )
            try:
                response = self._report(url, body, depth=None)
            except CursorExpired as exc:
                # 403 with DAV:valid-sync-token, mapped by its body in _send
                raise CursorExpired(exc.detail, cursor=token) from exc
            self._check_sync_status(response, token=token, url=url)
            answer = response.parse_sync_collection()
            for result in answer.changed:
                path = href_path(result.href)
                if path.rstrip("/") == href_path(self.located(url)).rstrip("/"):
                    continue  # some servers list the collection itself
                changed[path] = Member(path, result.etag or "", result.calendar_data)
                removed.discard(path)
            for href in answer.deleted:
                removed.add(href_path(href))
                changed.pop(href_path(href), None)
            if not answer.sync_token:
                raise PermanentError(
                    f"sync-collection on {self.where(url)} answered without a sync token"
                )
            previous, current = current, answer.sync_token
            if not answer.truncated or current == previous:
                break
        return SyncAnswer(tuple(changed.values()), tuple(sorted(removed)), current)

    def _check_sync_status(self, response: DAVResponse, *, token: str, url: str) -> None:
        status = response.status
        if status in (200, 207):
            return
        if status == 404:
            raise NotFound(f"calendar {self.where(url)} does not exist")
        if token and status in (400, 403, 409, 412):
            # 403 with DAV:valid-sync-token (RFC 6578 3.2), 409/400 from
            # others, 412 from Xandikos: the server does not know the token.
            raise CursorExpired(f"server rejected sync token (HTTP {status})", cursor=token)
        if status in (400, 403, 405, 415, 501):
            raise SyncUnsupported(f"sync-collection on {self.where(url)}: HTTP {status}")
        raise status_error(status, f"sync-collection on {self.where(url)}")

    def etags(self, url: str) -> tuple[str, tuple[Member, ...]]:
        """The collection's ctag (``""`` if the server has none) and every
        member's href and etag (PROPFIND, depth 1)."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
            "<D:prop><D:getetag/><CS:getctag/><D:resourcetype/></D:prop></D:propfind>"
        )
        response = self._send("PROPFIND", url, body, {**_XML, "Depth": "1"})
        if response.status == 404:
            raise NotFound(f"calendar {self.where(url)} does not exist")
        if response.status not in (200, 207):
            raise status_error(response.status, f"PROPFIND {self.where(url)}")
        ctag = ""
        found = False
        members: list[Member] = []
        own = href_path(self.located(url)).rstrip("/")
        for result in response.parse_propfind():
            path = href_path(result.href)
            props = result.properties
            if path.rstrip("/") == own:
                found = result.status == 200
                ctag = str(props.get(_CTAG) or "")
            elif result.status == 200 and not path.endswith("/"):
                members.append(Member(path, str(props.get(dav.GetEtag.tag) or "")))
        if not found:  # Xandikos: 207 whose only response is the URL's 404
            raise NotFound(f"calendar {self.where(url)} does not exist")
        return ctag, tuple(members)

    def ctag(self, url: str) -> str:
        """The collection's ctag, ``""`` if the server keeps none."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
            "<D:prop><CS:getctag/></D:prop></D:propfind>"
        )
        response = self._send("PROPFIND", url, body, {**_XML, "Depth": "0"})
        if response.status == 404:
            raise NotFound(f"calendar {self.where(url)} does not exist")
        if response.status not in (200, 207):
            raise status_error(response.status, f"PROPFIND {self.where(url)}")
        results = response.parse_propfind()
        if not any(result.status == 200 for result in results):
            raise NotFound(f"calendar {self.where(url)} does not exist")
        for result in results:
            value = result.properties.get(_CTAG)
            if value:
                return str(value)
        return ""

    def collection_versions(
        self, parent_url: str, *, tokens: bool, ctags: bool
    ) -> dict[str, CollectionVersion]:
        """The sync token and/or ctag of every collection directly below
        ``parent_url`` (one depth-1 PROPFIND), by unquoted path with its
        trailing slash; a property the server does not keep is ``""``."""
        asked = ("<D:sync-token/>" if tokens else "") + ("<CS:getctag/>" if ctags else "")
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
            f"<D:prop>{asked}</D:prop></D:propfind>"
        )
        response = self._send("PROPFIND", parent_url, body, {**_XML, "Depth": "1"})
        if response.status == 404:
            raise NotFound(f"collection {self.where(parent_url)} does not exist")
        if response.status not in (200, 207):
            raise status_error(response.status, f"PROPFIND {self.where(parent_url)}")
        versions: dict[str, CollectionVersion] = {}
        for result in response.parse_propfind():
            path = href_path(result.href)
            if result.status != 200 or not path.endswith("/"):
                continue
            props = result.properties
            versions[path] = CollectionVersion(
                sync_token=str(props.get(_SYNC_TOKEN) or ""), ctag=str(props.get(_CTAG) or "")
            )
        return versions

    def multiget(self, url: str, hrefs: Iterable[str]) -> dict[str, Member]:
        """The data and etags of ``hrefs``; a member gone meanwhile is absent."""
        found: dict[str, Member] = {}
        paths = sorted(set(hrefs))
        for first in range(0, len(paths), _MULTIGET_BATCH):
            batch = paths[first : first + _MULTIGET_BATCH]
            refs = "".join(f"<D:href>{escape(quote(path))}</D:href>" for path in batch)
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget {_CALDAV_NS}>'
                f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{refs}</C:calendar-multiget>"
            )
            response = self._report(url, body, depth=None)
            if response.status not in (200, 207):
                raise status_error(response.status, f"calendar-multiget on {self.where(url)}")
            for result in response.parse_calendar_query():
                if result.status == 200 and result.calendar_data is not None:
                    path = href_path(result.href)
                    found[path] = Member(path, result.etag or "", result.calendar_data)
        return found

    def calendar_query(self, url: str, window: Interval) -> tuple[Member, ...]:
        """Every event object the server finds overlapping ``window``."""
        start, end = _stamp(window)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {_CALDAV_NS}>'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{start}" end="{end}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
        )
        response = self._report(url, body, depth=1)
        if response.status not in (200, 207):
            raise status_error(response.status, f"calendar-query on {self.where(url)}")
        return tuple(
            Member(href_path(r.href), r.etag or "", r.calendar_data)
            for r in response.parse_calendar_query()
            if r.status == 200 and r.calendar_data is not None
        )

    def free_busy_query(self, url: str, window: Interval) -> str | None:
        """The VFREEBUSY text the server computes, ``None`` when it does not
        answer free-busy-query on this calendar."""
        start, end = _stamp(window)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><C:free-busy-query {_CALDAV_NS}>'
            f'<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
        )
        response = self._report(url, body, depth=1)
        if response.status == 404:
            raise NotFound(f"calendar {self.where(url)} does not exist")
        if response.status in (400, 403, 405, 415, 501) or (
            response.status == 200 and "BEGIN:VFREEBUSY" not in response.raw
        ):
            return None
        if response.status != 200:
            raise status_error(response.status, f"free-busy-query on {self.where(url)}")
        return response.raw

    # -- single objects ----------------------------------------------------

    def get(self, url: str) -> tuple[int, str, str]:
        """``(status, etag, body)`` of one object."""
        response = self._send("GET", url, "", {"Accept": "text/calendar"})
        return response.status, _etag(response), response.raw if response.status == 200 else ""

    def put(
        self, url: str, body: str, *, if_match: str | None = None, create: bool = False
    ) -> PutAnswer:
        """PUT ``body``; ``create`` sends ``If-None-Match: *``, ``if_match``
        ``If-Match``.  A refusal that names preconditions is answered, not
        raised, whatever its status (Cyrus 403, Radicale 409), so the
        writer can tell a taken UID from a changed object."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if create:
            headers["If-None-Match"] = "*"
        if if_match is not None:
            headers["If-Match"] = if_match
        try:
            response = self._http.write("PUT", url, body, headers)
        except caldav_error.AuthorizationError as exc:
            if not exc.preconditions:
                raise
            return PutAnswer(exc.status or 403, "", frozenset(exc.preconditions))
        preconditions: frozenset[str] = frozenset()
        if response.status >= 400:
            preconditions = frozenset(caldav_error.parse_preconditions(response.raw))
        return PutAnswer(response.status, _etag(response), preconditions)

    def delete(self, url: str) -> int:
        return self._http.write("DELETE", url).status


def _etag(response: DAVResponse) -> str:
    value = response.headers.get("ETag") or ""
    return str(value)
