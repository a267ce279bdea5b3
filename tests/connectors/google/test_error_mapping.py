"""No exception of googleapiclient, google-auth or the transport escapes
the Google connector: each maps onto :mod:`engine.errors`, and Google's
statuses and reasons map as its errors guide says
(https://developers.google.com/workspace/calendar/api/guides/errors)."""

from __future__ import annotations

import inspect
import json
import ssl
from types import ModuleType

import httplib2
import pytest
from google.auth import exceptions as auth_errors
from googleapiclient import errors as api_errors

from connectors.google.failures import QUOTA_BACKOFF, to_connector_error
from engine.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)


def exception_classes(module: ModuleType, root: str) -> list[type[BaseException]]:
    return [
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__.split(".")[0] == root
    ]


def instantiate(cls: type[BaseException]) -> BaseException:
    for args in ((), ("boom",), ("boom", "boom"), ("boom", "boom", "boom")):
        try:
            return cls(*args)
        except TypeError:
            continue
    return cls.__new__(cls)


def http_error(status: int, reason: str = "", *, retry_after: str | None = None,
               body: bytes | None = None) -> api_errors.HttpError:
    headers = {"status": str(status)}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if body is None:
        body = json.dumps({"error": {"code": status, "message": f"{reason or status}", "errors": [
            {"domain": "global", "reason": reason, "message": reason}] if reason else []}}
        ).encode()
    return api_errors.HttpError(httplib2.Response(headers), body, uri="https://x/calendar/v3/")


FOREIGN = [
    *exception_classes(api_errors, "googleapiclient"),
    *exception_classes(auth_errors, "google"),
    *exception_classes(httplib2, "httplib2"),
]


def test_the_meta_test_sees_the_libraries_exceptions() -> None:
    names = {cls.__name__ for cls in FOREIGN}
    assert {"HttpError", "RefreshError", "TransportError", "ServerNotFoundError",
            "MalformedError", "InvalidJsonError"} <= names


@pytest.mark.parametrize("cls", [c for c in FOREIGN if not issubclass(c, api_errors.HttpError)],
                         ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_library_exception_maps_onto_the_tree(cls: type[BaseException]) -> None:
    mapped = to_connector_error(instantiate(cls), calendar="c@acme.test")
    assert isinstance(mapped, ConnectorError)
    assert mapped.calendar == "c@acme.test"


@pytest.mark.parametrize("cls", [c for c in FOREIGN if issubclass(c, api_errors.HttpError)],
                         ids=lambda c: c.__name__)
def test_every_kind_of_http_error_maps_onto_the_tree(cls: type[api_errors.HttpError]) -> None:
    answered = cls.__new__(cls)
    api_errors.HttpError.__init__(answered, httplib2.Response({"status": "500"}), b"")
    assert isinstance(to_connector_error(answered), TransientError)
    unanswered = cls.__new__(cls)
    Exception.__init__(unanswered, "boom")
    unanswered.resp = None  # a batch failure names no answer
    assert isinstance(to_connector_error(unanswered), ConnectorError)


@pytest.mark.parametrize(("status", "reason", "expected"), [
    (400, "invalid", PermanentError),
    (401, "authError", AuthFailed),
    (403, "forbidden", AuthFailed),
    (403, "requiredAccessLevel", AuthFailed),
    (403, "rateLimitExceeded", RateLimited),
    (403, "userRateLimitExceeded", RateLimited),
    (403, "quotaExceeded", RateLimited),
    (429, "rateLimitExceeded", RateLimited),
    (404, "notFound", NotFound),
    (409, "duplicate", Conflict),
    (410, "fullSyncRequired", CursorExpired),
    (410, "updatedMinTooLongAgo", CursorExpired),
    (412, "conditionNotMet", Conflict),
    (500, "backendError", TransientError),
    (503, "", TransientError),
])
def test_statuses_and_reasons(status: int, reason: str, expected: type[ConnectorError]) -> None:
    mapped = to_connector_error(http_error(status, reason), calendar="c")
    assert type(mapped) is expected


def test_retry_after_is_read_from_the_answer() -> None:
    mapped = to_connector_error(http_error(429, "rateLimitExceeded", retry_after="7"))
    assert isinstance(mapped, RateLimited) and mapped.retry_after == 7.0
    unnamed = to_connector_error(http_error(403, "userRateLimitExceeded"))
    assert isinstance(unnamed, RateLimited) and unnamed.retry_after is None


def test_quota_exceeded_backs_off_for_minutes() -> None:
    mapped = to_connector_error(http_error(403, "quotaExceeded", retry_after="3"))
    assert isinstance(mapped, RateLimited) and mapped.retry_after == QUOTA_BACKOFF


def test_an_answer_that_is_no_google_json_still_maps() -> None:
    mapped = to_connector_error(http_error(502, body=b"<html>Bad Gateway</html>"))
    assert isinstance(mapped, TransientError)


def test_a_refusal_of_access_says_what_an_admin_must_fix() -> None:
    mapped = to_connector_error(http_error(403, "forbidden"), subject="alice@acme.test",
                                client_id="1234")
    assert isinstance(mapped, AuthFailed)
    assert "alice@acme.test" in mapped.detail and "1234" in mapped.detail
    assert "https://www.googleapis.com/auth/calendar" in mapped.detail


def test_transport_failures() -> None:
    assert type(to_connector_error(ConnectionRefusedError())) is TransientError
    assert type(to_connector_error(TimeoutError())) is TransientError
    assert type(to_connector_error(httplib2.ServerNotFoundError("x"))) is TransientError
    assert type(to_connector_error(ssl.SSLCertVerificationError("bad cert"))) is PermanentError
    wrapped = auth_errors.TransportError(ssl.SSLCertVerificationError("bad cert"))
    assert type(to_connector_error(wrapped)) is PermanentError
    assert type(to_connector_error(auth_errors.TransportError("reset"))) is TransientError


def test_a_retryable_refresh_failure_is_transient_else_auth() -> None:
    retryable = auth_errors.RefreshError("server error", retryable=True)
    assert type(to_connector_error(retryable)) is TransientError
    refused = to_connector_error(auth_errors.RefreshError("unauthorized_client"),
                                 subject="bob@acme.test")
    assert isinstance(refused, AuthFailed) and "domain-wide delegation" in refused.detail


def test_calpools_own_bugs_are_not_mapped() -> None:
    assert to_connector_error(KeyError("ours")) is None
