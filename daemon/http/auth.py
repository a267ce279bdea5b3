"""Bearer tokens of ``[[api.tokens]]`` and the scope each route needs.

Token secrets are resolved once, when the hook is built, and only their
sha256 digests are kept.  A presented token is hashed and compared with
``hmac.compare_digest`` against every configured digest, without stopping
at a match, so neither the comparison nor the number of comparisons tells
an attacker how close a guess came or which entry it matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from daemon.config import resolve_secret
from daemon.config.settings import ApiToken
from daemon.http.problems import problem

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


def require_scope(scope: str) -> Callable[..., Coroutine[None, None, Client]]:
    """A dependency that admits a request whose bearer token is configured
    and holds ``scope``: 401 without a known token, 403 without the scope.
    It is ``async`` although it never awaits (one sha256, no I/O): FastAPI
    runs a plain ``def`` dependency on the worker threads, which every
    request would queue for before its route's own turn there."""

    async def authorised(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Client:
        if credentials is None or not credentials.credentials:
            raise problem(
                "/problems/unauthorized",
                "send 'Authorization: Bearer <token>' with a token configured under "
                "[[api.tokens]]",
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
            )
        client = token_registry(request).identify(credentials.credentials)
        if client is None:
            raise problem(
                "/problems/unauthorized",
                "the bearer token is not one configured under [[api.tokens]]",
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
            )
        if scope not in client.scopes:
            raise problem(
                "/problems/forbidden",
                f"the token {client.name!r} lacks the scope {scope!r} this route needs",
                headers={
                    "WWW-Authenticate":
                        f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'
                },
                scope=scope,
            )
        return client

    return authorised
