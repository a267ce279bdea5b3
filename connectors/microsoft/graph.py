"""Graph over HTTPS with an app-only token: msal for the token, requests
for the calls, one TLS trust for both.

msal's ``ConfidentialClientApplication`` is built once per account (its
token cache is reused by every call) and lazily, on the first call that
needs a token, because building it fetches the authority's OpenID
configuration: a tenant that cannot be reached then is a failed call, not
a connector that cannot be built.  msal refuses ``http://`` authorities;
for one that is not Microsoft's own it is built with
``instance_discovery=False`` (it would ask Microsoft about it otherwise).
https://learn.microsoft.com/en-us/entra/msal/python/

Both msal and the Graph calls use ``requests`` sessions whose ``verify`` is
the account's ``ca_file`` and whose ``trust_env`` is false: otherwise
``REQUESTS_CA_BUNDLE`` (set on many machines) overrides ``verify``, and
proxy variables reroute a call that names its host.

A 401 from Graph means the token is no longer honoured (revoked, or the
tenant rotated keys before it expired): the cached token is dropped, a new
one acquired, and the request sent once more; a second 401 is
``AuthFailed``.  Absolute URLs (``@odata.nextLink``) are followed only
below ``graph_url``: the token goes with them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

import msal
import requests

from connectors.microsoft.account import GRAPH_SCOPE, MicrosoftAccount
from connectors.microsoft.failures import response_error, token_error
from connectors.microsoft.origins import MeetingOrigins
from engine.errors import NotFound, PermanentError
from engine.ports import RequestObserver, status_class

JSON = dict[str, Any]


def _unobserved(outcome: str) -> None:
    pass


def mailbox_path(mailbox: str) -> str:
    """``/users/{mailbox}`` with the address percent-encoded (``@`` kept).

    A user principal name or SMTP address never holds a slash, a backslash
    or blanks; such an id names no mailbox (Graph would answer 400 for the
    broken path), so it is ``NotFound`` without a request."""
    if not mailbox.strip() or any(c in mailbox for c in "/\\ \t"):
        raise NotFound(f"{mailbox!r} is not a mailbox address", calendar=mailbox)
    return "/users/" + quote(mailbox, safe="@")


class GraphSession:
    """One account's Graph client; thread-safe (a requests session per
    thread, one msal app behind a lock)."""

    def __init__(self, account: MicrosoftAccount, *, observe: RequestObserver | None = None):
        self.account = account
        self._observe = observe or _unobserved
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._msal_session: requests.Session | None = None
        # The bookings of meetings this account organised, for attendees' copies.
        self.origins = MeetingOrigins()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.account.ca_file or True
        session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not override verify
        with self._lock:
            self._sessions.append(session)
        return session

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # -- token -----------------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            self._msal_session = self._new_session()
            self._app = msal.ConfidentialClientApplication(
                self.account.client_id,
                client_credential=self.account.credential,
                authority=self.account.authority,
                instance_discovery=self.account.microsoft_authority,
                http_client=self._msal_session,
                timeout=self.account.timeout,
            )
        return self._app

    def token(self, *, fresh: bool = False) -> str:
        """An access token for Graph, from msal's cache unless ``fresh``
        (then the cached ones are dropped first)."""
        with self._token_lock:
            app = self._msal()
            if fresh:
                cache = app.token_cache
                for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                    cache.remove_at(entry)
            result = app.acquire_token_for_client([GRAPH_SCOPE])
        if not isinstance(result, dict) or "access_token" not in result:
            raise token_error(result if isinstance(result, dict) else {})
        return str(result["access_token"])

    # -- requests ----------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith("https://") or path_or_url.startswith("http://"):
            if not path_or_url.startswith(self.account.graph_url + "/"):
                raise PermanentError(
                    f"Graph pointed outside {self.account.graph_url}: {path_or_url} not followed")
            return path_or_url
        return self.account.graph_url + path_or_url

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
        what: str = "",
    ) -> requests.Response:
        """Send one Graph request; a 2xx answer (or one of ``accept``) is
        returned, any other raised as its :mod:`engine.errors` error."""
        url = self.url(path_or_url)
        what = what or f"{method} {url}"
        response = self._once(method, url, params, json, headers, self.token())
        if response.status_code == 401:
            response = self._once(method, url, params, json, headers, self.token(fresh=True))
        if 200 <= response.status_code < 300 or response.status_code in accept:
            return response
        raise response_error(response, what)

    def json(self, method: str, path_or_url: str, **kwargs: Any) -> JSON:
        """:meth:`send`, the answer's JSON object."""
        response = self.send(method, path_or_url, **kwargs)
        body = response.json()
        if not isinstance(body, dict):
            raise PermanentError(f"{method} {path_or_url}: Graph answered no JSON object")
        return body

    def _once(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: JSON | None,
        headers: Mapping[str, str] | None,
        token: str,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                **(headers or {})}
        try:
            response = self._session().request(
                method, url, params=params, json=json, headers=sent,
                timeout=self.account.timeout, allow_redirects=False)
        except Exception:
            self._observe("error")
            raise
        self._observe(status_class(response.status_code))
        return response
