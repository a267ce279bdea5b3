"""The FastAPI application of the HTTP hook, built over one ``App``.

:func:`create_app` resolves the API tokens (once), installs the problem
handlers and the request context, and includes the route modules.  A new
resource adds a module under ``daemon.http.routes`` with its ``router`` and
a line in :data:`ROUTERS`; it reuses ``require_scope`` (``daemon.http.auth``)
and ``problem`` (``daemon.http.problems``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.routing import Route

from daemon.http.auth import AuthenticateFirst, TokenRegistry
from daemon.http.context import RequestContext, request_id
from daemon.http.limits import BodyLimit
from daemon.http.openapi import describe_checks
from daemon.http.pages import router as pages_router
from daemon.http.pages.abuse import PublicRate
from daemon.http.problems import (
    MEDIA_TYPE,
    PROBLEM_TYPES,
    install_problem_handlers,
    problem,
)
from daemon.http.routes import bookings, event_types, health, hooks, links, pools, reschedule
from daemon.http.routes import metrics as metrics_routes
from daemon.wiring import App

log = logging.getLogger("calpool.http")

ROUTERS = (health.router, event_types.router, bookings.router, reschedule.router, links.router,
           pools.router, hooks.router, pages_router)

DESCRIPTION = """\
The HTTP hook of calpool: pooled-availability slots, bookings and one-time links.

Routes under `/v1/` need `Authorization: Bearer <token>` with a token
configured under `[[api.tokens]]` that holds the route's scope (`slots`,
`book` or `admin`): without a known token 401 (with `WWW-Authenticate:
Bearer`), without the scope 403.  `POST /hooks/{provider}` takes no bearer
token: each push delivery is authenticated by its channel's token.

The customer pages (`/book/{token}`, `/meet/{event_type}`,
`/manage/{manage_token}`, `/assets/{name}`) are HTML for people and are not
listed here: see the README, "Customer pages".  The answer to a request that
creates a booking carries `manage_url`, the booking's manage page.

Every error of the API is an RFC 9457 problem document
(`application/problem+json`) whose `type` is one of:
"""


def create_app(app: App, *, environ: Mapping[str, str] | None = None) -> FastAPI:
    """The hook over ``app``.  Reads the token secrets (from ``environ``,
    default the process environment) and raises ``ConfigError`` when one
    cannot be read."""
    api = FastAPI(
        title="calpool",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,  # the UI pages load scripts from a CDN; the document is enough
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    api.state.calpool = app
    api.state.tokens = TokenRegistry(app.config.api_tokens, environ)
    api.state.public_rate = PublicRate(*app.config.http.public_rate)
    install_problem_handlers(api)
    api.add_exception_handler(OperationalError, _database_unavailable)  # type: ignore[arg-type]
    # Innermost first: the token is checked before any route reads a body,
    # the body's size before that (token or not), and both answers carry
    # the request id of RequestContext, the outermost.
    api.add_middleware(AuthenticateFirst,
                       routes=[route for router in ROUTERS for route in router.routes])
    api.add_middleware(BodyLimit, max_body=app.config.http.max_body)
    api.add_middleware(RequestContext)
    for router in ROUTERS:
        api.include_router(router)
    metrics_routes.install(api)  # GET /metrics, and timing of slot queries
    # Every route with its methods, for the Allow header of a 405.
    api.state.method_routes = [
        route for route in (*api.routes, *(r for router in ROUTERS for r in router.routes))
        if isinstance(route, Route)
    ]

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = openapi_document(api)
            describe_checks(api.openapi_schema, app.config.event_types, app.config.calendars)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def openapi_document(api: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error response served as
    ``application/problem+json`` and the problem types listed."""
    types = "\n".join(
        f"- `{kind.uri}` ({kind.status}): {kind.meaning}" for kind in PROBLEM_TYPES.values()
    )
    document = get_openapi(
        title=api.title, version=api.version, description=(api.description or "") + types,
        routes=api.routes,
    )
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if status[:1] in "45" and content and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return document


async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    log.warning("the database did not answer: %s", exc.orig,
                extra={"request_id": request_id(request)})
    return problem(
        "/problems/database-unavailable", "the database did not answer; try again shortly",
        headers={"Retry-After": "5"},
    ).response()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("calpool")
    except PackageNotFoundError:
        return "0.0.0"
