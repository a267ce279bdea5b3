"""RFC 9457 problem documents: the one shape of every error the hook sends.

A route (or a dependency) refuses a request by raising :class:`Problem`,
usually built with :func:`problem`; the handlers installed by
:func:`install_problem_handlers` turn it, FastAPI's own validation errors
and Starlette's 404/405 into ``application/problem+json``.  Every ``type``
is a relative URI under ``/problems/`` listed in :data:`PROBLEM_TYPES`, so
the OpenAPI document can describe each one (:func:`problem_responses`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One documented problem ``type``: its URI, status and title."""

    uri: str
    status: int
    title: str
    meaning: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    kind.uri: kind
    for kind in (
        ProblemType("/problems/validation", 422, "The request is not valid",
                    "a parameter or body field is malformed or out of range; `errors` names "
                    "each one"),
        ProblemType("/problems/unauthorized", 401, "Authentication required",
                    "no bearer token, or one that is not configured under [[api.tokens]]"),
        ProblemType("/problems/forbidden", 403, "Missing scope",
                    "the token is valid but lacks the scope the route needs (`scope`)"),
        ProblemType("/problems/not-found", 404, "Not found", "no such route"),
        ProblemType("/problems/method-not-allowed", 405, "Method not allowed",
                    "the route exists but not for this method (see `Allow`)"),
        ProblemType("/problems/unknown-event-type", 404, "Unknown event type",
                    "no event type with this key is configured"),
        ProblemType("/problems/not-ready", 503, "Not ready",
                    "the database does not answer, or some calendar has never been synced"),
        ProblemType("/problems/database-unavailable", 503, "Database unavailable",
                    "the database did not answer; try again later"),
        ProblemType("/problems/http-error", 400, "HTTP error",
                    "another refusal at the HTTP level (the status is the one sent), such as "
                    "a malformed request line or header"),
        ProblemType("/problems/payload-too-large", 413, "Request body too large",
                    "the request body is larger than http.max_body (`max_body`, bytes); it "
                    "was not read"),
        ProblemType("/problems/request-timeout", 408, "Request timeout",
                    "the request's headers or body took longer than http.client_timeout"),
        ProblemType("/problems/too-many-connections", 503, "Too many connections",
                    "the server holds http.max_connections connections; retry after "
                    "`Retry-After`"),
        ProblemType("/problems/internal", 500, "Internal error",
                    "an unexpected failure; the log holds the details under the request id"),
    )
}


def register_problem_type(kind: ProblemType) -> ProblemType:
    """Add a type (for routes defined elsewhere, such as bookings) so that it
    is documented like the built-in ones."""
    PROBLEM_TYPES[kind.uri] = kind
    return kind


class ProblemError(BaseModel):
    """One invalid parameter or field."""

    model_config = ConfigDict(extra="allow")

    in_: str = Field(alias="in", description="`query`, `path`, `header` or `body`")
    name: str = Field(description="the parameter, or the dotted path of a body field")
    detail: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document.  Further members (``errors``,
    ``reason``, ``scope``…) depend on the ``type``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a relative URI under /problems/; see the API description")
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = Field(
        default=None, description="with /problems/validation: every invalid input"
    )


class Problem(Exception):
    """A refusal that becomes a problem document.  ``extra`` members are
    added to the document; ``headers`` to the response."""

    def __init__(
        self,
        status: int,
        type_: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def document(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.document(), status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE
        )


def problem(
    type_: str, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> Problem:
    """A :class:`Problem` of a documented type (status and title from
    :data:`PROBLEM_TYPES`)."""
    kind = PROBLEM_TYPES[type_]
    return Problem(kind.status, kind.uri, kind.title, detail, headers=headers, **extra)


def invalid(errors: Sequence[Mapping[str, str]]) -> Problem:
    """A ``/problems/validation`` problem listing ``errors`` (each with
    ``in``, ``name`` and ``detail``)."""
    listed = [dict(error) for error in errors]
    summary = "; ".join(f"{error['name']}: {error['detail']}" for error in listed)
    return problem("/problems/validation", summary, errors=listed)


def install_problem_handlers(api: FastAPI) -> None:
    api.add_exception_handler(Problem, _on_problem)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    api.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]


async def _on_problem(_request: Request, exc: Problem) -> JSONResponse:
    return exc.response()


async def _on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return invalid([_validation_error(error) for error in exc.errors()]).response()


def _validation_error(error: Mapping[str, Any]) -> dict[str, str]:
    """FastAPI's ``{"loc": ["query", "start"], "msg": …}`` as ``in``/``name``.
    The rejected input is not echoed back: it may be long or sensitive."""
    location = [str(part) for part in error.get("loc", ())]
    where = location[0] if location else "body"
    path = location[1:]
    found: dict[str, str] = {
        "in": where,
        "name": ".".join(path) if path else where,
        "detail": str(error.get("msg", "invalid")),
    }
    if where == "body":
        found["pointer"] = "#/" + "/".join(path)
    return found


async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        found = problem("/problems/not-found", f"there is no route {request.url.path}")
    elif exc.status_code == 405:
        allowed = allowed_methods(request)
        found = problem(
            "/problems/method-not-allowed",
            f"{request.method} is not allowed on {request.url.path}",
        )
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    elif exc.status_code == 413:
        found = problem("/problems/payload-too-large", str(exc.detail),
                        max_body=getattr(exc, "max_body", None))
    elif exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's body parsing: the bytes are not UTF-8, so not JSON either.
        found = invalid([{"in": "body", "name": "body", "pointer": "#/",
                          "detail": "the body is not UTF-8 encoded JSON"}])
    else:
        # Starlette raises few others (400 for a malformed body); keep the status.
        kind = PROBLEM_TYPES["/problems/http-error"]
        found = Problem(exc.status_code, kind.uri, kind.title, str(exc.detail))
    found.headers.update(headers)
    return found.response()


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path takes (Starlette names
    only the first route's that matched the path)."""
    routes: Sequence[Route] = getattr(request.app.state, "method_routes", ())
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def problem_responses(*types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that may answer with ``types``:
    one entry per status, its description listing the types."""
    by_status: dict[int, list[ProblemType]] = {}
    for uri in types:
        kind = PROBLEM_TYPES[uri]
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: {
            "description": "; ".join(f"`{kind.uri}`: {kind.meaning}" for kind in kinds),
            "model": ProblemDetails,
        }
        for status, kinds in sorted(by_status.items())
    }
