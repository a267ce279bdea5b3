"""The HTTP under :class:`~connectors.caldav.dav.DavSession`: caldav's
``DAVClient`` with redirects followed here, precondition refusals mapped,
and the library's parse noise kept out of the log.

Redirects: PROPFIND, REPORT and GET follow up to :data:`MAX_REDIRECTS` hops
(same origin only: the credentials go with every request), with their body
— the HTTP client's own following drops the body of a 301, and a REPORT
without one is a 400 on Cyrus — and the transport keeps the final URL:
later requests below a moved collection, PUT and DELETE included, go
straight to where it lives (Cyrus answers the owner's path of a shared
calendar with a 301 to the sharee's).  :meth:`DavTransport.where` names
both URLs for errors.

A 401/403 that the client library raises: with a ``DAV:error`` precondition
body it becomes :func:`~connectors.caldav.failures.precondition_error`'s
error, so a taken UID is a ``Conflict`` and not an authorization failure;
without one it stays the library's error, which
:func:`~connectors.caldav.failures.to_connector_error` maps to
``AuthFailed``.

Bounded answers: every answer is read here, in chunks, before caldav sees
it, and refused when its body grows past :data:`MAX_ANSWER_BYTES` (a
hostile or broken server's 50 MB multistatus, a body that never ends:
``PermanentError``) or when the whole exchange, body included, takes
longer than the account's ``timeout`` (a server that drips its answer a
byte at a time, which the HTTP client's per-read timeout never stops:
``TransientError``).  Wall time per request is so at most about twice the
timeout, memory at most the cap plus what lxml builds of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error
from caldav.response import DAVResponse

from connectors.caldav.account import CalDAVAccount
from connectors.caldav.failures import precondition_error
from connectors.caldav.library_log import library_parse_log_quieted
from engine.errors import PermanentError, TransientError
from engine.ports import RequestObserver, status_class

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = (301, 302, 307, 308)
# Methods whose redirects are followed; a write goes where the transport
# learnt the collection lives (see DavTransport.write).
_FOLLOWED = frozenset({"PROPFIND", "REPORT", "GET"})
_XML = {"Content-Type": 'application/xml; charset="utf-8"'}

# The largest answer body read (decoded).  A listing of 100,000 members'
# etags is about 15 MB; a calendar-multiget batch (200 objects) far less.
MAX_ANSWER_BYTES = 32 * 2**20
_CHUNK = 16 * 1024


def _unobserved(outcome: str) -> None:
    pass


def _path(url: str) -> str:
    return unquote(urlsplit(url).path)


def _bounded(request: Callable[..., Any], *, max_bytes: int, seconds: float) -> Callable[..., Any]:
    """``request`` (a niquests session's) that reads the whole body itself,
    at most ``max_bytes`` of it and within ``seconds`` of sending."""

    def bounded(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        kwargs.update(allow_redirects=False, stream=True)
        response = request(method, url, *args, **kwargs)
        what = f"{method} {url}"
        try:
            declared = str(response.headers.get("Content-Length") or "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise PermanentError(
                    f"{what}: answer of {int(declared)} bytes refused (more than {max_bytes})"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentError(f"{what}: answer cut off past {max_bytes} bytes")
                if time.monotonic() - started > seconds:
                    raise TransientError(
                        f"{what}: answer not complete after {seconds:g} s ({size} bytes so far)"
                    )
                chunks.append(chunk)
        except BaseException:
            response.close()
            raise
        # What niquests' ``content`` would hold had it read the body itself.
        response._content = b"".join(chunks)
        response._content_consumed = True
        return response

    return bounded


class DavTransport:
    """One account's HTTP client.  Not shared across threads concurrently
    (niquests sessions are not)."""

    def __init__(self, account: CalDAVAccount, *, observe: RequestObserver | None = None) -> None:
        # Told of every request sent, redirect hops included (each is one).
        self._observe = observe or _unobserved
        self._client = DAVClient(
            url=account.url,
            username=account.username,
            password=account.password,
            ssl_verify_cert=account.ca_file or True,
            timeout=account.timeout,  # type: ignore[arg-type]  # niquests takes floats
            enable_rfc6764=False,
        )
        # Redirects are followed in send(), which keeps the body and the
        # final URL; the client's own following would lose both.
        # The body is read under a size cap and a deadline (module docstring).
        session = self._client.session
        session.request = _bounded(  # type: ignore[method-assign]
            session.request, max_bytes=MAX_ANSWER_BYTES, seconds=account.timeout
        )
        # Where a URL that redirected ended up; a collection's entry (ending
        # in "/") also moves everything below it.
        self._moved: dict[str, str] = {}
        self._located: set[str] = set()

    def close(self) -> None:
        self._client.close()

    def located(self, url: str) -> str:
        """``url`` with the moves this session has seen applied."""
        if url in self._moved:
            return self._moved[url]
        for old, new in self._moved.items():
            if old.endswith("/") and url.startswith(old):
                return new + url[len(old) :]
        return url

    def where(self, url: str) -> str:
        """``url`` for an error message: with where it moved, if it did."""
        final = self.located(url)
        return url if final == url else f"{url} (redirected to {final})"

    def relocate(self, collection: str) -> bool:
        """Ask where ``collection`` lives (PROPFIND depth 0, redirects
        followed), once per session; whether it turned out to live somewhere
        else than where this session has been sending requests."""
        if collection in self._located:
            return False
        self._located.add(collection)
        before = self.located(collection)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>'
        )
        # A failure here (403 D:need-privileges where it moved, a chain
        # that does not end) says more than the write's bare refusal.
        self.send("PROPFIND", collection, body, {**_XML, "Depth": "0"})
        return self.located(collection) != before

    def write(
        self, method: str, url: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> DAVResponse:
        """PUT or DELETE ``url`` where the session knows its collection
        lives.  A redirect, or a 403 naming no precondition, may mean the
        collection lives elsewhere (Cyrus refuses a write at the owner's path
        of a shared calendar with a bare 403): ask once where, and if it
        moved, send the request there.  Writes are not sent to wherever a
        Location points; only the collection's own PROPFIND follows it."""
        collection = url.rsplit("/", 1)[0] + "/"
        try:
            response = self._once(method, self.located(url), body, headers, map_refusal=False)
        except caldav_error.AuthorizationError as exc:
            if exc.status != 403 or exc.preconditions or not self.relocate(collection):
                raise
        else:
            if response.status not in _REDIRECT_STATUSES or not self.relocate(collection):
                return response
        return self._once(method, self.located(url), body, headers, map_refusal=False)

    def send(
        self, method: str, url: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> DAVResponse:
        """Send one request where ``url`` is known to live, following a
        PROPFIND's, REPORT's or GET's redirects (see the module docstring)."""
        start = target = self.located(url)
        for _hop in range(MAX_REDIRECTS + 1):
            what = f"{method} {target}" if target == url else f"{method} {url} (at {target})"
            response = self._once(method, target, body, headers, what=what)
            if method not in _FOLLOWED or response.status not in _REDIRECT_STATUSES:
                break
            location = response.headers.get("Location")
            if not location:
                raise PermanentError(
                    f"{method} {url}: {response.status} redirect without a Location (at {target})"
                )
            hop = urljoin(target, str(location))
            if urlsplit(hop)[:2] != urlsplit(target)[:2]:
                # The credentials go with every request: never to another origin.
                raise PermanentError(
                    f"{method} {url}: redirected to another origin, not followed ({hop})"
                )
            target = hop
        else:
            raise PermanentError(
                f"{method} {url}: still redirected after {MAX_REDIRECTS} hops (last to {target})"
            )
        if target != start:
            self._moved[url] = target
            if start != url:
                self._moved[start] = target
        return response

    def _once(
        self,
        method: str,
        url: str,
        body: str,
        headers: Mapping[str, str] | None,
        *,
        map_refusal: bool = True,
        what: str = "",
    ) -> DAVResponse:
        try:
            with library_parse_log_quieted():
                response: DAVResponse = self._client.request(url, method, body, dict(headers or {}))
        except caldav_error.AuthorizationError as exc:
            # An answer (401 / 403) that the library raised instead of returning.
            status = str(exc.status)
            self._observe(status_class(int(status)) if status.isdigit() else "4xx")
            if map_refusal and exc.preconditions:
                raise precondition_error(
                    exc.status, exc.preconditions, what or f"{method} {url}", href=_path(url)
                ) from exc
            raise
        except Exception:
            self._observe("error")
            raise
        self._observe(status_class(response.status))
        return response
