"""Whatever a server answers, only :mod:`engine.errors` leaves the connector."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy
from engine.core.model import Interval
from engine.errors import AuthFailed, ConnectorError, NotFound, PermanentError, TransientError
from engine.ports import CalendarConnector, CalendarRef, EventDraft, PushChannel
from tests.connectors.caldav.junk_server import JunkServer, Script

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
CAL = CalendarRef("rooms/spree/", "Europe/Berlin")
DRAFT = EventDraft(
    booking_id="b1",
    title="t",
    start=datetime(2027, 3, 2, 9, tzinfo=UTC),
    end=datetime(2027, 3, 2, 10, tzinfo=UTC),
)
MULTISTATUS_BROKEN = b'<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>'

SCRIPTS = {
    "server-error": Script(500, b"oops"),
    "unavailable-with-retry-after": Script(503, b"", {"Retry-After": "1"}),
    "html-instead-of-xml": Script(
        200, b"<html><body>Welcome</body></html>", {"Content-Type": "text/html"}
    ),
    "broken-xml": Script(207, MULTISTATUS_BROKEN, {"Content-Type": "application/xml"}),
    "xml-of-another-kind": Script(207, b"<hello/>", {"Content-Type": "application/xml"}),
    "unauthorized-without-challenge": Script(401, b"no"),
    "forbidden": Script(403, b"no"),
    "not-found": Script(404, b""),
    "teapot": Script(418, b""),
}


def calls(connector: CalDAVConnector) -> dict[str, Callable[[], object]]:
    return {
        "list_window": lambda: connector.list_window(CAL, WINDOW),
        "changes_since-sync": lambda: connector.changes_since(CAL, "sc1:tok", WINDOW),
        "changes_since-etag": lambda: connector.changes_since(
            CAL, "et1:eJyrVkpWslJKVaoFAA-vAvQ=", WINDOW
        ),
        "free_busy": lambda: connector.free_busy([CAL], WINDOW),
        "events_in": lambda: connector.events_in(CAL, WINDOW),
        "read_event": lambda: connector.read_event(CAL, "b1"),
        "create_event": lambda: connector.create_event(CAL, DRAFT),
        "update_event": lambda: connector.update_event(CAL, DRAFT, etag='"1"'),
        "delete_event": lambda: connector.delete_event(CAL, "b1"),
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_only_connector_errors_leave(junk_server: JunkServer, script: str) -> None:
    junk_server.script = SCRIPTS[script]
    connector = CalDAVConnector(CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=1)))
    for name, call in calls(connector).items():
        try:
            call()
        except ConnectorError as exc:
            assert exc.calendar == CAL.id, name
        # anything else propagates and fails the test, naming the call


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("server-error", TransientError),
        ("unavailable-with-retry-after", TransientError),
        ("broken-xml", PermanentError),
        ("unauthorized-without-challenge", AuthFailed),
        ("forbidden", AuthFailed),
        ("not-found", NotFound),
    ],
)
def test_listing_failures_keep_their_meaning(
    junk_server: JunkServer, script: str, expected: type[ConnectorError]
) -> None:
    junk_server.script = SCRIPTS[script]
    connector = CalDAVConnector(CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=1)))
    with pytest.raises(expected):
        connector.list_window(CAL, WINDOW)


def test_transient_answers_are_retried(junk_server: JunkServer) -> None:
    junk_server.script = Script(502, b"")
    connector = CalDAVConnector(
        CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=3, initial_wait=0.01))
    )
    with pytest.raises(TransientError):
        connector.create_event(CAL, DRAFT)
    assert len(junk_server.script.requests) == 3


def test_requests_go_to_the_resolved_calendar(junk_server: JunkServer) -> None:
    junk_server.script = Script(204, b"")
    CalDAVConnector(CalDAVAccount(url=junk_server.url)).delete_event(CAL, "b1")
    assert junk_server.script.requests == ["DELETE /dav/rooms/spree/calpool-b1.ics"]


def test_caldav_says_it_has_no_push() -> None:
    connector = CalDAVConnector(CalDAVAccount(url="https://dav.example/"))
    assert connector.push_supported is False
    assert connector.start_channel(CAL, address="https://x/", token="t", ttl_seconds=60) is None
    channel = PushChannel(
        id="c", calendar_id=CAL.id, resource_id="r", token="t", expires_at=WINDOW.end
    )
    connector.stop_channel(channel)
    with pytest.raises(PermanentError):
        connector.renew_channel(channel, ttl_seconds=60)
    with pytest.raises(PermanentError):
        connector.parse_notification({}, b"")
    with pytest.raises(PermanentError):  # no handshake either
        connector.parse_notification({}, b"", {"validationToken": "t"})


def test_the_connector_implements_the_protocol() -> None:
    assert isinstance(CalDAVConnector(CalDAVAccount(url="https://dav.example/")), CalendarConnector)


def test_a_redirect_chain_that_does_not_end_is_cut_after_five_hops(junk_server: JunkServer) -> None:
    junk_server.script = Script(301, b"", {"Location": "/dav/elsewhere/"})
    connector = CalDAVConnector(CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=1)))
    with pytest.raises(PermanentError) as caught:
        connector.list_window(CAL, WINDOW)
    message = str(caught.value)
    # Both ends of the chain are named: what calpool asked for, where it was sent last.
    assert f"{junk_server.url}rooms/spree/" in message
    assert "/dav/elsewhere/" in message and "5 hops" in message
    assert len(junk_server.script.requests) == 6  # the request and five redirects


def test_a_write_is_not_sent_where_a_redirect_points(junk_server: JunkServer) -> None:
    """A PUT answered with a redirect asks where the collection lives
    (PROPFIND, redirects followed); it is never resent to a Location as such."""
    junk_server.script = Script(301, b"", {"Location": "/dav/elsewhere/"})
    connector = CalDAVConnector(CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=1)))
    with pytest.raises(ConnectorError):
        connector.create_event(CAL, DRAFT)
    methods = [request.split()[0] for request in junk_server.script.requests]
    assert methods[0] == "PUT" and set(methods[1:]) == {"PROPFIND"}


def test_a_redirect_to_another_origin_is_not_followed(junk_server: JunkServer) -> None:
    """The account's credentials go with every request."""
    junk_server.script = Script(301, b"", {"Location": "http://elsewhere.invalid/dav/"})
    connector = CalDAVConnector(CalDAVAccount(url=junk_server.url, retry=RetryPolicy(attempts=1)))
    with pytest.raises(PermanentError, match=r"another origin.*elsewhere\.invalid"):
        connector.list_window(CAL, WINDOW)
    assert len(junk_server.script.requests) == 1
