"""The Calendar API client of one account: google-auth service-account
credentials per subject, and a googleapiclient service per thread and
subject (neither httplib2 nor a built service is thread-safe).

The service is built from the discovery document shipped inside
googleapiclient (``static_discovery=True``: no request at start) with
``api_endpoint`` the account's ``calendar/v3/`` URL.  Every request, the
token request included, goes through one :class:`ObservedHttp` per thread,
which verifies TLS with the account's ``ca_file`` and tells the observer
of each request's outcome.
"""

from __future__ import annotations

import threading
from typing import Any

import google_auth_httplib2
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build

from connectors.google.account import CALENDAR_SCOPE, GoogleAccount
from engine.ports import RequestObserver, status_class


class ObservedHttp(httplib2.Http):  # type: ignore[misc]  # httplib2 ships no types
    """httplib2 that reports each request's outcome to ``observe``."""

    def __init__(self, *, observe: RequestObserver | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._observe = observe

    def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = super().request(*args, **kwargs)
        except Exception:
            if self._observe is not None:
                self._observe("error")
            raise
        if self._observe is not None:
            self._observe(status_class(int(answer[0].status)))
        return answer


class CalendarClients:
    """Hands out the Calendar service acting as a given user."""

    def __init__(self, account: GoogleAccount, *, observe: RequestObserver | None = None) -> None:
        self._account = account
        self._observe = observe
        self._local = threading.local()
        self._lock = threading.Lock()
        self._credentials: dict[str, service_account.Credentials] = {}
        self._base = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            dict(account.service_account_info), scopes=[CALENDAR_SCOPE])

    def credentials(self, subject: str | None) -> service_account.Credentials:
        """The credentials acting as ``subject`` (domain-wide delegation);
        shared by every thread, so the token is fetched once per subject."""
        key = subject or ""
        with self._lock:
            found = self._credentials.get(key)
            if found is None:
                found = self._base.with_subject(subject) if subject else self._base
                self._credentials[key] = found
            return found

    def service(self, subject: str | None) -> Any:
        """This thread's Calendar service acting as ``subject``."""
        services: dict[str, Any] | None = getattr(self._local, "services", None)
        if services is None:
            services = self._local.services = {}
        key = subject or ""
        service = services.get(key)
        if service is None:
            http = ObservedHttp(observe=self._observe, timeout=self._account.timeout,
                                ca_certs=self._account.ca_file)
            authorized = google_auth_httplib2.AuthorizedHttp(self.credentials(subject), http=http)
            service = build("calendar", "v3", http=authorized, static_discovery=True,
                            cache_discovery=False,
                            client_options={"api_endpoint": self._account.endpoint})
            services[key] = service
        return service

    def close(self) -> None:
        """Close this thread's connections (others close with their threads)."""
        services: dict[str, Any] = getattr(self._local, "services", None) or {}
        for service in services.values():
            service.close()
        self._local.services = {}
