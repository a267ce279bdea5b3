"""``GET /metrics`` (Prometheus text format, without a token) and the timing
of slot queries.

The route serves the registry of the running ``App``'s :class:`Metrics`.
It is meant for a scraper on the host or the private network; put it
behind the reverse proxy's access rules when the hook is public.

:func:`install` adds the route and :class:`SlotQueryTimer`, an ASGI
middleware that observes how long each slot query took (both slot routes,
whatever their outcome), so the figure includes validation, the store's
version check and the JSON encoding a client waits for.
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.http.context import CalpoolApp

router = APIRouter(tags=["metrics"])

# The classic text format every Prometheus reads (names are plain ASCII, so
# the 1.0.0 format that newer clients announce would add nothing).
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SLOT_ROUTES = (
    ("event_type", re.compile(r"/v1/event-types/[^/]+/slots")),
    ("link", re.compile(r"/v1/links/[^/]+/slots")),
)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "text format 0.0.4"}},
)
def metrics(app: CalpoolApp) -> Response:
    return Response(generate_latest(app.metrics.registry), media_type=MEDIA_TYPE)


class SlotQueryTimer:
    """Times ``GET`` on the slot routes into ``calpool_slot_query_seconds``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _slot_route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            calpool = scope["app"].state.calpool
            calpool.metrics.slot_query_seconds.labels(route).observe(
                time.perf_counter() - started)


def _slot_route(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path = scope["path"]
    for name, pattern in _SLOT_ROUTES:
        if pattern.fullmatch(path):
            return name
    return None


def install(api: FastAPI) -> None:
    """Serve ``/metrics`` and time slot queries on ``api``."""
    api.include_router(router)
    api.add_middleware(SlotQueryTimer)
