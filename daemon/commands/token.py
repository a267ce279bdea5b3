"""``calpool token new``: a fresh API token and the digest to configure."""

from __future__ import annotations

import hashlib
import secrets

from daemon.commands.invocation import Invocation

TOKEN_BYTES = 32  # 256 bits of randomness, well above the 128 a bearer token needs


def new_token() -> tuple[str, str]:
    """A URL-safe random token and its sha256 hex digest."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hashlib.sha256(token.encode("ascii")).hexdigest()


def new(invocation: Invocation) -> int:
    token, digest = new_token()
    scopes = ", ".join(f'"{scope}"' for scope in invocation.args.scopes or ["slots", "book"])
    print(f"token:  {token}", file=invocation.out)
    print(f"sha256: {digest}", file=invocation.out)
    print(file=invocation.out)
    print("# Give the token to the client; keep only its digest in the config:",
          file=invocation.out)
    print("[[api.tokens]]", file=invocation.out)
    print(f'name = "{invocation.args.name}"', file=invocation.out)
    print(f'sha256 = "{digest}"', file=invocation.out)
    print(f"scopes = [{scopes}]", file=invocation.out)
    return 0
