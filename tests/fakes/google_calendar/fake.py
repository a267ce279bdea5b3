"""``GoogleCalendarFake``: Calendar API v3 and Google's OAuth token endpoint on one port.

The server is a Starlette app under uvicorn, on its own asyncio loop in a
thread, on 127.0.0.1 — like the Graph fake. Asyncio lets a request held by an
injected ``delay`` not hold up the others, and the rooms' answers run as timers
on that loop. Plain HTTP by default (google-api-python-client and google-auth
accept an ``http://`` endpoint); ``tls=True`` serves https with a certificate
from a ``trustme`` test CA (``ca_file``).
https://developers.google.com/calendar/api/v3/reference
https://developers.google.com/identity/protocols/oauth2/service-account
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.google_calendar.api import CalendarApi
from tests.fakes.google_calendar.calendars import ROOM_DOMAIN, Calendars, Room, RoomAnswer
from tests.fakes.google_calendar.errors import Fault, Faults, google_error
from tests.fakes.google_calendar.login import AccessToken, TokenEndpoint
from tests.fakes.google_calendar.push import Channels

__all__ = ["ROOM_DOMAIN", "GoogleCalendarFake"]


class GoogleCalendarFake:
    """A local Google Calendar API v3 + token endpoint (the face: notes/GOOGLE_FAKE_API.md)."""

    def __init__(self, *, tls: bool = False, project_id: str = "acme-proj") -> None:
        self.tls = tls
        self._offset = timedelta(0)
        self._clock_lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, list[str]], str | None]] = []
        self._faults = Faults()
        self._tmp = tempfile.TemporaryDirectory(prefix="google-fake-")
        self._ca = trustme.CA()
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)
        ssl_options: dict[str, Any] = {}
        if tls:
            cert_file, key_file = self.issue_cert("127.0.0.1")
            ssl_options = {"ssl_certfile": cert_file, "ssl_keyfile": key_file}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.api_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"
        self.token_uri = f"{self.api_url}token"
        self.login = TokenEndpoint(
            token_uri=lambda: self.token_uri, clock=self.clock, project_id=project_id
        )
        self.calendars = Calendars(clock=self.clock, schedule=self._schedule)
        self.push = Channels(clock=self.clock, api_url=lambda: self.api_url)
        self.channels = self.push.channels
        self.deliveries = self.push.deliveries
        self.calendars.listeners.append(self.push.on_change)
        self.api = CalendarApi(self.calendars, self.push)
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self._handle, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]
                )
            ]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", **ssl_options)
        )
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve(sockets=[self._sock]))

    def start(self, *, timeout: float = 15.0) -> GoogleCalendarFake:
        self._thread = threading.Thread(target=self._run, name="google-fake", daemon=True)
        self._thread.start()
        self.push.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Google Calendar fake did not come up")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.push.stop()
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._abort_connections)
        self._server.force_exit = True
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        self._sock.close()
        self._tmp.cleanup()

    def _abort_connections(self) -> None:
        # Clients keep idle keep-alive connections open and uvicorn would wait for them.
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    def __enter__(self) -> GoogleCalendarFake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- time ----------------------------------------------------------------------------

    def clock(self) -> datetime:
        """The fake's now (UTC): the real time moved on by ``advance``."""
        with self._clock_lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._clock_lock:
            self._offset += timedelta(seconds=seconds)

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` real seconds, as a timer on the server's loop."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.call_later, delay, action)

    # ---- accounts and calendars ------------------------------------------------------------

    def service_account_info(
        self, client_email: str = "calpool@acme-proj.iam.gserviceaccount.com"
    ) -> dict[str, Any]:
        """A service-account key file (JSON) whose ``token_uri`` is this fake's.
        https://cloud.google.com/iam/docs/keys-create-delete#creating"""
        return self.login.service_account_info(client_email)

    def delegate(self, subject: str) -> None:
        """Domain-wide delegation: the service accounts may act as ``subject``.
        https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority"""
        self.login.delegate(subject)

    def add_calendar(
        self, calendar_id: str, *, timezone: str = "UTC", owner: str | None = None
    ) -> None:
        self.calendars.add(calendar_id, timezone=timezone, owner=owner or calendar_id, room=None)

    def add_room(
        self,
        email: str,
        *,
        name: str = "",
        timezone: str = "UTC",
        answer: RoomAnswer = RoomAnswer.AUTO,
        delay: float = 0.2,
    ) -> None:
        """A resource calendar (``…@resource.calendar.google.com``), readable by the domain.
        https://support.google.com/a/answer/1033925"""
        self.calendars.add(
            email,
            timezone=timezone,
            owner=email,
            room=Room(name=name or email, answer=answer, delay=delay),
        )

    def set_room_answer(self, email: str, answer: RoomAnswer) -> None:
        self.calendars.set_room_answer(email, answer)

    def answer_as_room(
        self, calendar_id: str, event_id: str, room_email: str, response: str
    ) -> None:
        self.calendars.answer_as_room(calendar_id, event_id, room_email, response)

    # ---- the provider side (a person with another client) ---------------------------------

    def insert(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        owner = self.calendars.get(calendar_id).owner
        return self.calendars.insert(calendar_id, event, creator=owner)

    def patch(self, calendar_id: str, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.calendars.update(calendar_id, event_id, changes)

    def delete(self, calendar_id: str, event_id: str) -> None:
        self.calendars.delete(calendar_id, event_id)

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        return self.calendars.event(calendar_id, event_id)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        return self.calendars.stored(calendar_id)

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Older sync tokens of that calendar (of all, without one) answer 410 from now on."""
        self.api.expire_sync_tokens(calendar_id)

    def expire_access_tokens(self) -> None:
        """Every issued access token is refused from now on (401 authError)."""
        self.login.expire_tokens()

    def expire_channel(self, channel_id: str) -> None:
        self.push.expire(channel_id)

    @property
    def channel_lifetime(self) -> timedelta:
        """The longest channel ``events.watch`` grants: a longer ``ttl`` is shortened to it.
        The channel's ``expiration`` in Google's answer is the one that counts, not the
        ``ttl`` asked for, and there is no renewal: a new channel replaces the old one.
        Tests set seconds to watch a channel run out and be replaced.
        https://developers.google.com/calendar/api/guides/push
        https://developers.google.com/calendar/api/v3/reference/events/watch"""
        return self.push.max_ttl

    @channel_lifetime.setter
    def channel_lifetime(self, value: timedelta) -> None:
        self.push.max_ttl = value

    @property
    def allow_http_webhooks(self) -> bool:
        """Google refuses non-https webhook addresses; tests may allow ``http://`` receivers."""
        return self.push.allow_http

    @allow_http_webhooks.setter
    def allow_http_webhooks(self, value: bool) -> None:
        self.push.allow_http = value

    @property
    def receiver_ca_file(self) -> str | bool:
        """What the fake trusts when it POSTs to an https receiver (CA file; True = system)."""
        return self.push.receiver_verify

    @receiver_ca_file.setter
    def receiver_ca_file(self, value: str | bool) -> None:
        self.push.receiver_verify = value

    def issue_cert(self, host: str = "127.0.0.1") -> tuple[str, str]:
        """(certificate chain file, key file) for ``host`` from the fake's test CA."""
        certificate = self._ca.issue_cert(host)
        stem = Path(self._tmp.name) / f"cert-{secrets.token_hex(4)}"
        cert_file, key_file = f"{stem}.pem", f"{stem}.key"
        certificate.private_key_pem.write_to_path(key_file)
        for index, blob in enumerate(certificate.cert_chain_pems):
            blob.write_to_path(cert_file, append=index > 0)
        return cert_file, key_file

    def fail(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int,
        reason: str = "",
        message: str = "",
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        query: str | None = None,
        hold: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` in Google's error
        shape, after ``delay`` seconds (a status below 400 only delays, then answers).

        ``query`` (a regex on the raw query string) narrows the match, e.g. to the
        pages after the first of a listing (``pageToken=``): Google may answer any
        request of an incremental listing 410 ``fullSyncRequired`` when it invalidates
        the sync token ("the server will respond to an incremental request with a
        response code 410"), a later page included.

        ``hold`` (with a status below 400): the request is carried out at once and its
        answer held back for that many seconds — an insert that landed while the
        client waits, as when a client times out or dies before Google's answer
        reaches it, and a retry with the same client-chosen id then meets 409
        ``duplicate`` ("The requested identifier already exists").

        https://developers.google.com/calendar/api/guides/errors
        https://developers.google.com/calendar/api/guides/sync
        https://developers.google.com/calendar/api/v3/reference/events/insert
        """
        self._faults.add(
            Fault(
                method=method,
                path=re.compile(path) if path else None,
                status=status,
                reason=reason,
                message=message,
                retry_after=retry_after,
                times=times,
                delay=delay,
                query=re.compile(query) if query else None,
                hold=hold,
            )
        )

    def clear_faults(self) -> None:
        """Drop every pending ``fail`` rule (a storm ends)."""
        self._faults.clear()

    # ---- the wire --------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        token = self.login.check(request.headers.get("authorization"))
        self.requests.append(
            (
                request.method,
                path,
                parse_qs(request.url.query),
                token.subject if token is not None else None,
            )
        )
        fault = self._faults.take(request.method, path, request.url.query)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status >= 400:
                return google_error(
                    fault.status, fault.reason, fault.message, retry_after=fault.retry_after
                )
        answer = await self._answer(request, path, token)
        if fault is not None and fault.hold:
            # Done on Google's side; the answer is late (cut short when the fake stops).
            until = time.monotonic() + fault.hold
            while time.monotonic() < until and not self._server.should_exit:
                await asyncio.sleep(0.05)
        return answer

    async def _answer(self, request: Request, path: str, token: AccessToken | None) -> Response:
        if path == "/token" and request.method == "POST":
            return await self.login.token(request)
        if not path.startswith("/calendar/v3/"):
            return google_error(404, "notFound", "Not Found")
        if token is None:
            if not request.headers.get("authorization"):
                return google_error(
                    401,
                    "required",
                    "Login Required.",
                    location="Authorization",
                    location_type="header",
                )
            return google_error(
                401,
                "authError",
                "Invalid Credentials",
                location="Authorization",
                location_type="header",
            )
        found = self.api.route(request.method, path)
        if found is None:
            return google_error(404, "notFound", "Not Found")
        handler, params = found
        return await self.api.dispatch(handler, request, token, params)
