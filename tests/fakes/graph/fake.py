"""``GraphFake``: Microsoft Graph (Outlook calendars) and the identity platform on one TLS port.

The server is a Starlette app under uvicorn on a thread, with uvicorn's own
``ssl_certfile``/``ssl_keyfile`` — the stack the daemon itself serves with.
It is asyncio, so a request held by an injected ``delay`` does not hold up the
others (needed to show that one mailbox slows while the others do not, and to
reach Outlook's four-concurrent-requests limit per mailbox); ``http.server``
would need a thread per request for the same. TLS is not optional: msal
refuses an ``http://`` authority. The certificate (for 127.0.0.1) comes from a
``trustme`` test CA whose PEM is ``ca_file``.
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
https://learn.microsoft.com/en-us/graph/throttling
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
import threading
import time
from collections import defaultdict
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

from tests.fakes.graph.api import GraphApi, unknown_mailbox
from tests.fakes.graph.calendars import Calendars, Room, RoomAnswer, UnknownMailbox
from tests.fakes.graph.errors import Fault, Faults, graph_error
from tests.fakes.graph.login import IdentityPlatform
from tests.fakes.graph.subscriptions import Subscriptions

MAILBOX_CONCURRENCY = 4  # Outlook: at most four concurrent requests per mailbox and app
_MAILBOX_IN_PATH = re.compile(r"^/v1\.0/users/([^/]+)", re.IGNORECASE)


class GraphFake:
    """A local Microsoft Graph + login endpoint (see tests/fakes/graph/__init__.py for the face)."""

    def __init__(
        self,
        *,
        tenant_id: str = "0f7a8e2c-5b1d-4c3e-9a6f-2d8b7c1e4a90",
        client_id: str = "3c9b1d2e-7f4a-4e8b-a1c6-5d2f9e8b7a31",
        client_secret: str = "fake-graph-secret~0123456789",
    ) -> None:
        self.tenant_id, self.client_id, self.client_secret = tenant_id, client_id, client_secret
        self._offset = timedelta(0)
        self._clock_lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []
        self._faults = Faults()
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._tmp = tempfile.TemporaryDirectory(prefix="graph-fake-")
        ca = trustme.CA()
        certificate = ca.issue_cert("127.0.0.1")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._cert_file = str(Path(self._tmp.name) / "cert.pem")
        self._key_file = str(Path(self._tmp.name) / "key.pem")
        certificate.private_key_pem.write_to_path(self._key_file)
        for index, blob in enumerate(certificate.cert_chain_pems):
            blob.write_to_path(self._cert_file, append=index > 0)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.authority_url = f"https://127.0.0.1:{self.port}"
        self.graph_url = f"{self.authority_url}/v1.0"
        self.identity = IdentityPlatform(
            base_url=lambda: self.authority_url,
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=client_secret,
            clock=self.clock,
        )
        self.calendars = Calendars(clock=self.clock, schedule=self._schedule)
        self.api = GraphApi(self.calendars, graph_url=lambda: self.graph_url)
        self.notifications = Subscriptions(
            clock=self.clock, tenant_id=tenant_id, has_mailbox=self.calendars.has_mailbox
        )
        self.subscriptions = self.notifications.subscriptions
        self.deliveries = self.notifications.deliveries
        self.calendars.listeners.append(self.notifications.on_change)
        self.api.routes += self.notifications.routes()
        self._ca = ca
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self._handle, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]
                )
            ]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                ssl_certfile=self._cert_file,
                ssl_keyfile=self._key_file,
            )
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> GraphFake:
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="graph-fake",
            daemon=True,
        )
        self._thread.start()
        self.notifications.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Graph fake did not come up")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        with self._timers_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.notifications.stop()
        # Clients keep idle keep-alive TLS connections open and uvicorn would wait for them
        # (seconds per stop): cut them, and do not wait.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._abort_connections)
        self._server.force_exit = True
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._sock.close()
        self._tmp.cleanup()

    def _abort_connections(self) -> None:
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    def __enter__(self) -> GraphFake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- time ----------------------------------------------------------------------------------

    def clock(self) -> datetime:
        """The fake's now (UTC): the real time moved on by ``advance``."""
        with self._clock_lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._clock_lock:
            self._offset += timedelta(seconds=seconds)

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    # ---- the provider side -----------------------------------------------------------------

    def add_mailbox(self, user: str, *, timezone: str = "UTC") -> None:
        self.calendars.add_mailbox(user, timezone=timezone)

    def add_room(
        self,
        email: str,
        *,
        name: str = "",
        answer: RoomAnswer = RoomAnswer.AUTO,
        delay: float = 0.2,
    ) -> None:
        self.calendars.add_mailbox(
            email, room=Room(name=name or email, answer=answer, delay=delay)
        )

    def set_room_answer(self, email: str, answer: RoomAnswer) -> None:
        self.calendars.set_room_answer(email, answer)

    def answer_as_room(self, user: str, event_id: str, room_email: str, response: str) -> None:
        self.calendars.answer_as_room(user, event_id, room_email, response)

    def create(self, user: str, event: dict[str, Any]) -> dict[str, Any]:
        return self.calendars.create(user, event)

    def update(self, user: str, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.calendars.update(user, event_id, changes)

    def delete(self, user: str, event_id: str) -> None:
        self.calendars.delete(user, event_id)

    def event(self, user: str, event_id: str) -> dict[str, Any] | None:
        found = self.calendars.instance(user, event_id)
        return found.resource if found else None

    def events(self, user: str) -> list[dict[str, Any]]:
        return self.calendars.stored(user)

    @property
    def receiver_ca_file(self) -> str | bool:
        """What the fake trusts when it POSTs to a receiver (a CA file; True = system CAs)."""
        return self.notifications.receiver_verify

    @receiver_ca_file.setter
    def receiver_ca_file(self, value: str | bool) -> None:
        self.notifications.receiver_verify = value

    def issue_cert(self, host: str = "127.0.0.1") -> tuple[str, str]:
        """(certificate chain file, key file) for ``host`` from the fake's test CA — for an
        https receiver the fake will trust with ``receiver_ca_file = fake.ca_file``."""
        certificate = self._ca.issue_cert(host)
        stem = Path(self._tmp.name) / f"receiver-{secrets.token_hex(4)}"
        cert_file, key_file = f"{stem}.pem", f"{stem}.key"
        certificate.private_key_pem.write_to_path(key_file)
        for index, blob in enumerate(certificate.cert_chain_pems):
            blob.write_to_path(cert_file, append=index > 0)
        return cert_file, key_file

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> None:
        """Deliver a lifecycle notification (``reauthorizationRequired``, ``subscriptionRemoved``,
        ``missed``) to the subscription's lifecycleNotificationUrl.

        https://learn.microsoft.com/en-us/graph/webhooks-lifecycle
        """
        self.notifications.send_lifecycle(subscription_id, lifecycle_event)

    def expire_delta_tokens(self, user: str | None = None) -> None:
        self.api.expire_tokens(user)

    @property
    def empty_delta_page(self) -> bool:
        """When True, every delta round (initial or incremental) opens with an empty page."""
        return self.api.empty_delta_page

    @empty_delta_page.setter
    def empty_delta_page(self, value: bool) -> None:
        self.api.empty_delta_page = value

    def add_certificate(self, certificate_pem: bytes | str) -> None:
        """Register a certificate credential for the app (msal ``client_credential=
        {"private_key", "thumbprint"}`` or ``{"private_key", "public_certificate"}``).

        https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
        """
        self.identity.add_certificate(certificate_pem)

    def expire_access_tokens(self) -> None:
        """Every issued bearer token is refused from now on (401 InvalidAuthenticationToken)."""
        self.identity.expire_tokens()

    def fail(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int,
        code: str = "",
        message: str = "",
        retry_after: int | None = None,
        times: int = 1,
        delay: float = 0.0,
        lasting: float | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` in Graph's error shape,
        after ``delay`` seconds (a status below 400 only delays, then answers normally).

        With ``lasting`` (seconds) the rule is a storm instead: *every* matching request is
        answered so until ``lasting`` seconds from now (or :meth:`calm`), however many come.
        That is how Graph throttles: once a limit is exceeded it "limits any further requests
        from that client for a period of time", answering 429 with ``Retry-After``.  Outlook's
        limits are per app and mailbox ("requests to one user do not impact the limit for
        another user"), so a storm on one mailbox's path leaves the app's other mailboxes served.

        https://learn.microsoft.com/en-us/graph/errors
        https://learn.microsoft.com/en-us/graph/throttling
        https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
        https://devblogs.microsoft.com/microsoft365dev/throttling-coming-to-outlook-api-and-microsoft-graph/
        """
        self._faults.add(
            Fault(
                method=method,
                path=re.compile(path) if path else None,
                status=status,
                code=code,
                message=message,
                retry_after=retry_after,
                times=times,
                delay=delay,
                until=None if lasting is None else time.monotonic() + lasting,
            )
        )

    def calm(self) -> None:
        """Every pending :meth:`fail` rule is dropped: a storm ends now."""
        self._faults.clear()

    # ---- the wire --------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        self._loop = asyncio.get_running_loop()
        path = request.url.path
        self.requests.append(
            (request.method, path, parse_qs(request.url.query), dict(request.headers.items()))
        )
        mailbox_match = _MAILBOX_IN_PATH.match(path)
        mailbox = mailbox_match.group(1).lower() if mailbox_match else None
        if mailbox is not None:
            if self._in_flight[mailbox] >= MAILBOX_CONCURRENCY:
                return graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    request_headers=request.headers,
                    retry_after=1,
                )
            self._in_flight[mailbox] += 1
        try:
            return await self._answer(request, path)
        finally:
            if mailbox is not None:
                self._in_flight[mailbox] -= 1

    async def _answer(self, request: Request, path: str) -> Response:
        fault = self._faults.take(request.method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status >= 400:
                return graph_error(
                    fault.status,
                    fault.code,
                    fault.message,
                    request_headers=request.headers,
                    retry_after=fault.retry_after,
                )
        login = re.match(
            r"^/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)$", path
        )
        if login:
            if login.group(2).startswith("v2.0") and request.method == "GET":
                return self.identity.openid_configuration(login.group(1))
            if request.method == "POST":
                return await self.identity.token(login.group(1), request)
        if not path.lower().startswith("/v1.0/"):
            return graph_error(
                404, "UnknownError", "No such endpoint.", request_headers=request.headers
            )
        if not self.identity.token_valid(request.headers.get("authorization")):
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty."
                if not request.headers.get("authorization")
                else "Lifetime validation failed, the token is expired.",
                request_headers=request.headers,
            )
        found = self.api.route(request.method, path)
        if found is None:
            return graph_error(
                400,
                "BadRequest",
                f"Resource not found for the segment in '{path}'.",
                request_headers=request.headers,
            )
        handler, params = found
        try:
            return await handler(request, params)
        except UnknownMailbox as exc:
            return unknown_mailbox(request, exc)
