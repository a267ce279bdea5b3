"""No exception of caldav, the HTTP client, lxml or icalendar escapes the
CalDAV connector: each maps onto :mod:`engine.errors`."""

from __future__ import annotations

import inspect
import time
from types import ModuleType

import icalendar
import icalendar.error
import niquests.exceptions
import pytest
import requests.exceptions
from caldav.lib import error as caldav_error
from lxml import etree

from connectors.caldav.account import RetryPolicy
from connectors.caldav.failures import guarded, to_connector_error
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


def exception_classes(module: ModuleType) -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Exception) and not issubclass(obj, Warning)
    ]


def instantiate(cls: type[BaseException]) -> BaseException:
    # lxml's ParseError takes (message, code, line, column)
    for args in ((), ("boom",), ("boom", "boom"), ("boom", "boom", "boom"), ("boom", 1, 1, 1)):
        try:
            return cls(*args)
        except TypeError:
            continue
    return cls.__new__(cls)


FOREIGN = [
    cls
    for module in (caldav_error, niquests.exceptions, requests.exceptions, etree, icalendar.error)
    for cls in exception_classes(module)
    if cls.__module__.split(".")[0] in ("caldav", "niquests", "requests", "lxml", "icalendar")
]


def test_the_meta_test_sees_the_libraries_exceptions() -> None:
    names = {cls.__name__ for cls in FOREIGN}
    assert {"AuthorizationError", "RateLimitError", "ConnectionError", "XMLSyntaxError"} <= names
    assert len(FOREIGN) > 40


@pytest.mark.parametrize("cls", FOREIGN, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_library_exception_maps_onto_the_error_tree(cls: type[BaseException]) -> None:
    assert isinstance(to_connector_error(instantiate(cls), calendar="c"), ConnectorError)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (caldav_error.AuthorizationError("u", "Unauthorized", status=401), AuthFailed),
        (
            caldav_error.AuthorizationError(
                "u", "x", preconditions=["{DAV:}valid-sync-token"], status=403
            ),
            CursorExpired,
        ),
        (caldav_error.NotFoundError("u"), NotFound),
        (caldav_error.ReportError("u", "x", status=502), TransientError),
        (caldav_error.ReportError("u", "x", status=400), PermanentError),
        (
            caldav_error.RateLimitError(
                "u", "x", retry_after="7", retry_after_seconds=7.0, status=429
            ),
            RateLimited,
        ),
        (niquests.exceptions.ConnectionError("refused"), TransientError),
        (niquests.exceptions.ReadTimeout("slow"), TransientError),
        (niquests.exceptions.SSLError("unknown ca"), PermanentError),
        (requests.exceptions.ConnectionError("refused"), TransientError),
        (ConnectionRefusedError("refused"), TransientError),
    ],
)
def test_mapping_keeps_the_meaning(exc: Exception, expected: type[ConnectorError]) -> None:
    mapped = to_connector_error(exc, calendar="rooms/spree/")
    assert type(mapped) is expected
    if isinstance(mapped, RateLimited):
        assert mapped.retry_after == 7.0


CALDAV = "{urn:ietf:params:xml:ns:caldav}"


@pytest.mark.parametrize(
    ("preconditions", "expected"),
    [
        # Cyrus: one UID in two calendars of one login (RFC 6638 3.2.4.1)
        ([f"{CALDAV}unique-scheduling-object-resource"], Conflict),
        ([f"{CALDAV}no-uid-conflict"], Conflict),
        ([f"{CALDAV}valid-calendar-object-resource"], PermanentError),
        ([f"{CALDAV}supported-calendar-data"], PermanentError),
        (["{http://example.com/ns/}something-new"], PermanentError),
        (["{DAV:}valid-sync-token"], CursorExpired),
        (["{DAV:}need-privileges"], AuthFailed),
        ([], AuthFailed),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else ",".join(value) or "none",
)
def test_a_403_is_read_by_its_precondition_body(
    preconditions: list[str], expected: type[ConnectorError]
) -> None:
    """Regression (issue 20): caldav raises AuthorizationError for every 403
    before calpool sees the answer; only the body tells a taken UID from a
    login without rights."""
    exc = caldav_error.AuthorizationError("u", "Forbidden", preconditions=preconditions, status=403)
    mapped = to_connector_error(exc, calendar="room-a/")
    assert type(mapped) is expected
    for tag in preconditions:
        assert tag.split("}")[1] in str(mapped)


def test_a_value_error_raised_inside_icalendar_is_mapped() -> None:
    try:
        icalendar.Calendar.from_ical("not a calendar")
    except ValueError as exc:
        assert isinstance(to_connector_error(exc), PermanentError)
    else:
        pytest.fail("icalendar accepted garbage")


def test_calpools_own_bugs_stay_visible() -> None:
    assert to_connector_error(KeyError("ours")) is None
    with pytest.raises(KeyError):
        guarded(lambda: dict[str, int]()["missing"], policy=RetryPolicy(attempts=3, initial_wait=0))


class Flaky:
    """Fails with ``failures`` in turn, then returns ``"done"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_transient_failures_are_retried_then_succeed() -> None:
    call = Flaky(
        niquests.exceptions.ConnectionError("x"), caldav_error.ReportError("u", "x", status=503)
    )
    assert guarded(call, policy=RetryPolicy(attempts=3, initial_wait=0.001)) == "done"
    assert call.calls == 3


def test_retries_stop_after_the_policys_attempts() -> None:
    call = Flaky(*[niquests.exceptions.ConnectionError("x")] * 5)
    with pytest.raises(TransientError) as caught:
        guarded(call, policy=RetryPolicy(attempts=2, initial_wait=0.001), calendar="cal/")
    assert call.calls == 2
    assert caught.value.calendar == "cal/"
    assert isinstance(caught.value.__cause__, niquests.exceptions.ConnectionError)


def test_permanent_failures_are_not_retried() -> None:
    call = Flaky(caldav_error.ReportError("u", "x", status=400))
    with pytest.raises(PermanentError):
        guarded(call, policy=RetryPolicy(attempts=5, initial_wait=0.001))
    assert call.calls == 1


def test_retry_after_is_honoured() -> None:
    limited = caldav_error.RateLimitError(
        "u", "x", retry_after="0.3", retry_after_seconds=0.3, status=429
    )
    call = Flaky(limited)
    started = time.monotonic()
    assert guarded(call, policy=RetryPolicy(attempts=2, initial_wait=0.001, max_wait=5)) == "done"
    assert time.monotonic() - started >= 0.3


def test_a_retry_after_beyond_the_policy_is_left_to_the_caller() -> None:
    limited = caldav_error.RateLimitError(
        "u", "x", retry_after="120", retry_after_seconds=120.0, status=429
    )
    call = Flaky(limited)
    with pytest.raises(RateLimited) as caught:
        guarded(call, policy=RetryPolicy(attempts=3, initial_wait=0.001, max_wait=1))
    assert call.calls == 1 and caught.value.retry_after == 120.0
