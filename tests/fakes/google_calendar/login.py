"""Google's OAuth 2.0 token endpoint for service accounts (the JWT-bearer grant).

google-auth's ``service_account.Credentials`` POSTs ``grant_type=
urn:ietf:params:oauth:grant-type:jwt-bearer`` and ``assertion=`` a JWT signed
(RS256) with the key file's private key: ``iss`` the service account's email,
``aud`` ``https://oauth2.googleapis.com/token`` (the fake also takes its own URI),
``scope``, ``iat``/``exp`` (at most an hour apart) and, for domain-wide
delegation, ``sub`` the user to act as. The answer is ``{"access_token",
"expires_in": 3599, "token_type": "Bearer"}``; a subject the service account
is not delegated for answers 401 ``unauthorized_client``, a bad signature 400
``invalid_grant``.
https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority
https://developers.google.com/identity/protocols/oauth2/service-account#error-codes
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# google-auth always names Google's own token endpoint as the audience, whatever the key
# file's token_uri says (google/oauth2/service_account.py); Google documents that value.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = timedelta(seconds=3600)
MAX_ASSERTION_LIFETIME = 3600
# Calendar scopes and what they allow (write = anything but GET and freeBusy).
# https://developers.google.com/calendar/api/auth
READ_SCOPES = {
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.events.readonly",
}
WRITE_SCOPES = {
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
}
FREEBUSY_SCOPES = READ_SCOPES | {"https://www.googleapis.com/auth/calendar.freebusy"}


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    client_id: str
    private_key_id: str
    public_key: rsa.RSAPublicKey


@dataclass(frozen=True)
class AccessToken:
    subject: str  # the user the token acts as (the service account itself without ``sub``)
    scopes: frozenset[str]
    expiry: datetime


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


class TokenEndpoint:
    """The service accounts the fake knows, the delegations, and the tokens it issued."""

    def __init__(
        self, *, token_uri: Callable[[], str], clock: Callable[[], datetime], project_id: str
    ) -> None:
        self._token_uri = token_uri
        self._clock = clock
        self._project_id = project_id
        self._lock = threading.Lock()
        self._accounts: dict[str, ServiceAccount] = {}  # client_email -> account
        self._delegated: set[str] = set()
        self._tokens: dict[str, AccessToken] = {}

    def service_account_info(self, client_email: str) -> dict[str, Any]:
        """A new key for ``client_email``: the key file JSON Google's console downloads."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_key_id = secrets.token_hex(20)
        client_id = str(secrets.randbelow(10**21)).zfill(21)
        with self._lock:
            self._accounts[client_email.lower()] = ServiceAccount(
                client_email=client_email,
                client_id=client_id,
                private_key_id=private_key_id,
                public_key=key.public_key(),
            )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self._project_id,
            "private_key_id": private_key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self._token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def delegate(self, subject: str) -> None:
        with self._lock:
            self._delegated.add(subject.lower())

    def expire_tokens(self) -> None:
        """Every issued access token is refused from now on (as after its hour)."""
        with self._lock:
            self._tokens.clear()

    async def token(self, request: Request) -> Response:
        """``POST token_uri`` with the JWT-bearer grant."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type: ")
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error(400, "invalid_request", "Invalid JWT.")
        with self._lock:
            account = self._accounts.get(str(unverified.get("iss", "")).lower())
        if account is None:
            return _oauth_error(400, "invalid_grant", "Invalid grant: account not found")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=[self._token_uri(), GOOGLE_TOKEN_URI],
                issuer=account.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=30,
            )
        except jwt.InvalidSignatureError:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        except jwt.PyJWTError as exc:
            return _oauth_error(400, "invalid_grant", f"Invalid JWT: {exc}")
        if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_LIFETIME:
            return _oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return _oauth_error(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        subject = str(claims.get("sub") or account.client_email)
        with self._lock:
            delegated = subject.lower() in self._delegated
        if subject.lower() != account.client_email.lower() and not delegated:
            return _oauth_error(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or "
                "client not authorized for any of the scopes requested.",
            )
        access_token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[access_token] = AccessToken(
                subject=subject, scopes=scopes, expiry=self._clock() + TOKEN_LIFETIME
            )
        return JSONResponse(
            {
                "access_token": access_token,
                "expires_in": int(TOKEN_LIFETIME.total_seconds()) - 1,
                "token_type": "Bearer",
            }
        )

    def check(self, authorization: str | None) -> AccessToken | None:
        """The live token an ``Authorization: Bearer`` header carries, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            found = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if found is None or self._clock() >= found.expiry:
            return None
        return found
