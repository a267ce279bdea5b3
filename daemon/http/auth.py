"""Bearer tokens of ``[[api.tokens]]`` and the scope each route needs.

Token secrets are resolved once, when the hook is built, and only their
sha256 digests are kept.  The ``Authorization`` header is read strictly
(:func:`presented_token`) and before any body (:class:`AuthenticateFirst`).
A presented token is hashed and compared with
``hmac.compare_digest`` against every configured digest, without stopping
at a match, so neither the comparison nor the number of comparisons tells
an attacker how close a guess came or which entry it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.config import resolve_secret
from daemon.config.settings import ApiToken
from daemon.http.problems import Problem, problem
from engine.services.links import LinkExpired, LinkNotFound, LinkUsed

REALM = "calpool"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token configured under [[api.tokens]] (see `calpool token new`).",
)


@dataclass(frozen=True, slots=True)
class Client:
    """Who sent a request: the ``name`` of its token and that token's scopes."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    client: Client


class TokenRegistry:
    """The configured tokens as digests.  Building one reads every token
    secret (raising ``ConfigError`` for an unset variable or unreadable
    file), so a daemon with a broken token fails at start, not at the first
    request."""

    def __init__(self, tokens: Sequence[ApiToken], environ: Mapping[str, str] | None = None):
        entries = []
        for token in tokens:
            if token.secret is not None:
                secret = resolve_secret(token.secret, environ)
                digest = hashlib.sha256(secret.encode("utf-8")).digest()
            else:
                assert token.sha256 is not None  # the config guarantees one of the two
                digest = bytes.fromhex(token.sha256)
            entries.append(_Entry(digest, Client(token.name, frozenset(token.scopes))))
        self._entries = tuple(entries)

    def identify(self, presented: str) -> Client | None:
        """The client whose token is ``presented``, or ``None``."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found: Client | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = entry.client
        return found


def token_registry(request: Request) -> TokenRegistry:
    registry: TokenRegistry = request.app.state.tokens
    return registry


# What follows "Bearer ": one or more visible ASCII characters (RFC 6750's
# b64token is a subset; `calpool token new` makes URL-safe base64).
_TOKEN = re.compile(r"[\x21-\x7e]+")
_CHALLENGE = f'Bearer realm="{REALM}"'


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = _CHALLENGE if error is None else f'{_CHALLENGE}, error="{error}"'
    return problem("/problems/unauthorized", detail, headers={"WWW-Authenticate": challenge})


def presented_token(request: Request) -> str:
    """The bearer token of ``request``, read strictly: exactly one
    ``Authorization`` header, the scheme ``Bearer`` in any case (RFC 7235),
    exactly one space, then the token with no space in or after it.
    Anything else is a 401 ``/problems/unauthorized`` saying what is wrong."""
    values = request.headers.getlist("authorization")
    if not values:
        raise _unauthorized("send 'Authorization: Bearer <token>' with a token configured "
                            "under [[api.tokens]]")
    if len(values) > 1:
        raise _unauthorized("send one Authorization header, not several", "invalid_request")
    scheme, space, token = values[0].partition(" ")
    if scheme.lower() != "bearer":
        raise _unauthorized("send 'Authorization: Bearer <token>' with a token configured "
                            "under [[api.tokens]]")
    if not space or not _TOKEN.fullmatch(token):
        raise _unauthorized("write the header as 'Bearer <token>': one space, then the token "
                            "with no space or control character", "invalid_request")
    return token


def authenticate(request: Request, scope: str) -> Client:
    """The client of ``request`` when its token is configured and holds
    ``scope``: else 401 (no valid token) or 403 (the scope is missing)."""
    client = token_registry(request).identify(presented_token(request))
    if client is None:
        raise _unauthorized("the bearer token is not one configured under [[api.tokens]]",
                            "invalid_token")
    if scope not in client.scopes:
        raise problem(
            "/problems/forbidden",
            f"the token {client.name!r} lacks the scope {scope!r} this route needs",
            headers={
                "WWW-Authenticate":
                    f'{_CHALLENGE}, error="insufficient_scope", scope="{scope}"'
            },
            scope=scope,
        )
    return client


def require_scope(scope: str) -> Callable[..., Coroutine[None, None, Client]]:
    """A dependency that admits a request whose bearer token is configured
    and holds ``scope``: 401 without a known token, 403 without the scope.
    :class:`AuthenticateFirst` runs the same check before the body is read.
    It is ``async`` although it never awaits (one sha256, no I/O): FastAPI
    runs a plain ``def`` dependency on the worker threads, which every
    request would queue for before its route's own turn there."""

    async def authorised(
        request: Request,
        # Only for the OpenAPI document's security scheme; the header is
        # read by presented_token, more strictly than HTTPBearer does.
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Client:
        return authenticate(request, scope)

    authorised.required_scope = scope  # type: ignore[attr-defined]
    return authorised


def required_scope(route: APIRoute) -> str | None:
    """The scope a route's ``require_scope`` dependency asks for, if any."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        found = getattr(dependency.call, "required_scope", None)
        if isinstance(found, str):
            return found
        pending.extend(dependency.dependencies)
    return None


class AuthenticateFirst:
    """ASGI middleware: a request for a route that needs a token is
    authenticated (401) and authorised (403) before the route reads a byte
    of its body, so a malformed body without a token gets 401, never a 422.
    (FastAPI reads and decodes a route's JSON body before it runs any
    dependency.)  The route's own dependency checks again, cheaply."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = [route for route in routes if isinstance(route, APIRoute)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                await _admit(scope, self.routes)
            except Problem as refusal:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


# Routes with a body that the link token in their path authorises: the link
# is opened (404 / 410) before the body is read, as a bearer token is checked.
LINK_AUTHORISED = frozenset({"/v1/links/{token}/bookings"})


async def _admit(scope: Scope, routes: Sequence[APIRoute]) -> None:
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        needed = required_scope(route)
        if needed is not None:
            authenticate(Request(scope), needed)
        elif route.path_format in LINK_AUTHORISED:
            token = str(child.get("path_params", {}).get("token", ""))
            await run_in_threadpool(_open_link, scope["app"], token)  # a database read
        return


def _open_link(api: Any, token: str) -> None:
    app = api.state.calpool
    try:
        app.links.open(token, app.clock())
    except LinkUsed:
        raise problem("/problems/link-used", "this link was used for a booking already") from None
    except LinkExpired as exc:
        raise problem("/problems/link-expired", exc.detail) from None
    except LinkNotFound:
        raise problem("/problems/link-not-found", "there is no such link") from None
