"""The identity platform's side of the fake: OpenID configuration and the client-credentials grant.

msal's ``ConfidentialClientApplication`` with a tenant authority first reads
``{authority}/v2.0/.well-known/openid-configuration`` and then posts
``grant_type=client_credentials`` with ``client_id``, ``client_secret`` and
``scope=https://graph.microsoft.com/.default`` to its ``token_endpoint``.
A certificate credential posts instead ``client_assertion_type=urn:ietf:params:
oauth:client-assertion-type:jwt-bearer`` and ``client_assertion``: a JWT signed
with the certificate's key (RS256 with header ``x5t``, or PS256 with
``x5t#S256``), ``aud`` the token endpoint, ``iss`` = ``sub`` = the client id; an
unregistered or badly signed one is 401 ``invalid_client`` AADSTS700027.
https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
Errors come as ``{"error", "error_description": "AADSTSnnnn: …", "error_codes"}``:
a wrong secret is 401 ``invalid_client`` AADSTS7000215, an unknown tenant 400
AADSTS90002, an unknown app 400 AADSTS700016, a scope without ``/.default`` 400
``invalid_scope`` AADSTS1002012.
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc
https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_LIFETIME = timedelta(seconds=3599)


def _aad_error(
    status: int,
    error: str,
    aadsts: int,
    description: str,
    clock: Callable[[], datetime],
) -> JSONResponse:
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{aadsts}: {description}",
            "error_codes": [aadsts],
            "timestamp": clock().strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status_code=status,
    )


class IdentityPlatform:
    """One registered app in one tenant; issues and checks access tokens."""

    def __init__(
        self,
        *,
        base_url: Callable[[], str],
        tenant_id: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._base_url = base_url
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}  # access token -> expiry
        self._certificates: dict[str, x509.Certificate] = {}  # b64url thumbprint -> certificate

    def add_certificate(self, certificate_pem: bytes | str) -> None:
        """Register a certificate credential (its SHA-1 and SHA-256 thumbprints) for the app."""
        data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
        certificate = x509.load_pem_x509_certificate(data)
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            thumbprint = base64.urlsafe_b64encode(certificate.fingerprint(algorithm))
            self._certificates[thumbprint.decode().rstrip("=")] = certificate

    def _assertion_valid(self, assertion: str) -> bool:
        try:
            header = jwt.get_unverified_header(assertion)
            thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
            certificate = self._certificates.get(thumbprint)
            public_key = certificate.public_key() if certificate is not None else None
            if not isinstance(public_key, rsa.RSAPublicKey):  # app certificates are RSA
                return False
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256", "PS256"],
                audience=f"{self._base_url()}/{self.tenant_id}/oauth2/v2.0/token",
                issuer=self.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError:
            return False
        return claims.get("sub") == self.client_id

    def _tenant_known(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower()

    def openid_configuration(self, tenant: str) -> Response:
        """The tenant's OpenID Connect discovery document (v2.0 endpoints)."""
        if not self._tenant_known(tenant):
            return _aad_error(
                400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.", self._clock
            )
        root = f"{self._base_url()}/{self.tenant_id}"
        return JSONResponse(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "jwks_uri": f"{self._base_url()}/{self.tenant_id}/discovery/v2.0/keys",
                "issuer": f"{root}/v2.0",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": [
                    "code",
                    "id_token",
                    "code id_token",
                    "id_token token",
                ],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            }
        )

    async def token(self, tenant: str, request: Request) -> Response:
        """The client-credentials grant: an opaque bearer token for Graph."""
        if not self._tenant_known(tenant):
            return _aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud.",
                self._clock,
            )
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
                self._clock,
            )
        if form.get("client_id") != self.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not "
                "found in the directory.",
                self._clock,
            )
        if "client_assertion" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE or not self._assertion_valid(
                form["client_assertion"]
            ):
                return _aad_error(
                    401,
                    "invalid_client",
                    700027,
                    "Client assertion failed signature validation, or the certificate used to "
                    "sign it is not registered on the application.",
                    self._clock,
                )
        elif not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret ID.",
                self._clock,
            )
        scopes = form.get("scope", "").split()
        if scopes != [GRAPH_DEFAULT_SCOPE]:
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not "
                "valid. Client credential flows must have a scope value with "
                "/.default suffixed to the resource identifier.",
                self._clock,
            )
        access_token = "fake-graph-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access_token] = self._clock() + TOKEN_LIFETIME
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": int(TOKEN_LIFETIME.total_seconds()),
                "ext_expires_in": int(TOKEN_LIFETIME.total_seconds()),
                "access_token": access_token,
            }
        )

    def token_valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries a token this fake issued, not yet expired."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        return expiry is not None and self._clock() < expiry

    def expire_tokens(self) -> None:
        """Every issued token stops working (as after its hour)."""
        with self._lock:
            self._tokens.clear()
