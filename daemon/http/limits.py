"""What one request may cost the hook: its body size and its client's time.

:class:`BodyLimit` (ASGI middleware) refuses a body over ``http.max_body``
with 413 ``/problems/payload-too-large``, before any route, dependency or
token check runs: a ``Content-Length`` over the limit is answered without
reading a byte of the body; a body without one (chunked) is counted as the
route reads it and refused at the first chunk past the limit.  Either way
the answer says ``Connection: close``, so the server stops reading the rest.

:class:`GuardedH11Protocol` (uvicorn's h11 protocol with a deadline) gives
a client ``http.client_timeout`` from its connection (or the first byte of
its next request) until the request's headers and body are in; past it the
client gets 408 ``/problems/request-timeout`` and the connection is closed.
uvicorn itself closes idle keep-alive connections after
``timeout_keep_alive`` (set to the same value) and answers 503 past
``limit_concurrency`` (``http.max_connections``); the time a route takes is
not the client's and is not bounded here.  A malformed request line or
header gets a ``/problems/http-error`` document instead of uvicorn's plain
text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from daemon.http.problems import MEDIA_TYPE, Problem, problem

log = logging.getLogger("calpool.http")


class BodyTooLarge(HTTPException):
    """Raised into the route reading a body past the limit.  An
    ``HTTPException``, so FastAPI's body parsing lets it through (it turns
    any other error into a 400) and the problem handlers answer it."""

    def __init__(self, max_body: int) -> None:
        super().__init__(413, f"the request body is larger than http.max_body "
                              f"({max_body} bytes)", headers={"Connection": "close"})
        self.max_body = max_body


def too_large(max_body: int) -> Problem:
    return problem(
        "/problems/payload-too-large",
        f"the request body is larger than http.max_body ({max_body} bytes)",
        headers={"Connection": "close"}, max_body=max_body,
    )


class BodyLimit:
    """ASGI middleware: bodies of at most ``max_body`` bytes."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await too_large(self.max_body).response()(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await too_large(self.max_body).response()(scope, receive, send)
        except ClientDisconnect:
            # The client went away (or its time ran out) while sending the
            # body: nobody is left to answer.
            log.info("the client left before its request body was in")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def raw_problem(status: int, reason: str, type_: str, detail: str, *,
                retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a problem document, for the protocol
    layer, where no ASGI response exists; it closes the connection."""
    body = json.dumps(problem(type_, detail).document()).encode()
    retry = f"retry-after: {retry_after}\r\n" if retry_after is not None else ""
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: {MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\n{retry}connection: close\r\n\r\n")
    return head.encode("latin-1") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for reading each request."""

    # Set per server by a subclass (see protocol_for).
    client_timeout: float = 15.0
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        # A request answered before its body was in (401, 413…): the
        # client still owes the rest of it, within the same deadline.
        self._answered_early: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            # Refused at once, before a byte is read: a flood of idle or slow
            # connections cannot hold more than max_connections sockets.
            _log_refusal(len(self.connections) - 1)
            transport.write(raw_problem(
                503, "Service Unavailable", "/problems/too-many-connections",
                f"the server holds http.max_connections ({self.max_connections}) connections; "
                "try again shortly", retry_after=1))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self._between_requests():
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        self._disarm_when_read()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body:
            self._answered_early = cycle
        else:
            self._disarm()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(raw_problem(
            400, "Bad Request", "/problems/http-error",
            "the request line or a header is not valid HTTP/1.1"))
        self.transport.close()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _disarm_when_read(self) -> None:
        """The request in progress is read in full: its route's time is not
        the client's.  (Between requests uvicorn's keep-alive timer runs.)"""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.client_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle is self._answered_early:
            pass  # answered already: only the connection ends
        elif cycle is None or cycle.response_complete or not cycle.response_started:
            if cycle is not None and not cycle.response_complete:
                # The route waits for the rest of the body: it gets a
                # disconnect, and no answer of its own goes out after ours.
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.write(raw_problem(
                408, "Request Timeout", "/problems/request-timeout",
                f"the request was not in within http.client_timeout "
                f"({self.client_timeout:g}s)"))
        self.transport.close()


_refusals = {"count": 0, "logged_at": 0.0}


def _log_refusal(open_connections: int) -> None:
    """One warning per 10 s at most, however many connections a flood brings."""
    _refusals["count"] += 1
    now = time.monotonic()
    if now - _refusals["logged_at"] >= 10:
        log.warning("refused %d connection(s) at http.max_connections (%d open)",
                    _refusals["count"], open_connections)
        _refusals.update(count=0, logged_at=now)


def protocol_for(client_timeout: float,
                 max_connections: int | None = None) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn takes a class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"client_timeout": client_timeout, "max_connections": max_connections})

