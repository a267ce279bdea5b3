"""What every request carries: the ``App`` it is served from and a request id.

:class:`RequestContext` is the outermost layer of the hook's own: it gives
each request an id (the caller's ``X-Request-Id`` when it is a plain token,
else a fresh one), returns it in the ``X-Request-Id`` header, and turns any
exception that no handler answered into a ``/problems/internal`` document
that names the id and nothing else; the traceback goes to the log with it.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daemon.http.problems import problem
from daemon.wiring import App

log = logging.getLogger("calpool.http")

HEADER = "X-Request-Id"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A link token in a path is a bearer credential: the log shows where, not which.
_TOKEN_IN_PATH = re.compile(r"(/links/|/book/|/manage/)[^/]+")


def loggable_path(path: str) -> str:
    """``path`` with any one-time link token replaced by ``<token>``."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


async def calpool_app(request: Request) -> App:
    # async although it never awaits: FastAPI runs a plain ``def``
    # dependency on the worker threads, a hand-over per request for nothing.
    app: App = request.app.state.calpool
    return app


CalpoolApp = Annotated[App, Depends(calpool_app)]


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.lower().encode("latin-1"), b"")
        text = given.decode("latin-1")
        rid = text if _ACCEPTED_ID.fullmatch(text) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append(HEADER, rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unexpected error answering %s %s", scope["method"], loggable_path(scope["path"]),
                extra={"request_id": rid},
            )
            if started:
                return  # the status line is out; the server ends the response
            response = problem(
                "/problems/internal",
                f"an unexpected error occurred; the log has the details under request id {rid}",
                request_id=rid,
            ).response()
            await response(scope, receive, send_with_id)
