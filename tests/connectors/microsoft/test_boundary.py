"""Nothing of msal, requests or json escapes the Microsoft connector: every
public call against servers that answer nonsense (over TLS, as msal
insists) raises an :mod:`engine.errors` exception and nothing else.  And
any delivery body parses into notifications or ``PermanentError``."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector, RetryPolicy, push
from engine.core.model import Interval
from engine.errors import ConnectorError, PermanentError
from engine.ports import CalendarRef, EventDraft, PushChannel

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 3, 8, tzinfo=UTC))
CALENDAR = CalendarRef("someone@contoso.example")
DRAFT = EventDraft(booking_id="bk-junk", title="t", start=WINDOW.start,
                   end=WINDOW.start + timedelta(minutes=30))
CHANNEL = PushChannel(id="sub", calendar_id=CALENDAR.id, resource_id="",
                      expires_at=WINDOW.end, token="t")

# (status, content type, body) a broken or hostile server might answer with.
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "html": (200, "text/html", b"<html>maintenance</html>"),
    "truncated-json": (200, "application/json", b'{"value": [{"id": '),
    "json-of-another-shape": (200, "application/json", b'[1, 2, 3]'),
    "value-of-nonsense": (200, "application/json",
                          b'{"value": [{"id": 5, "start": "x"}], "access_token": 1}'),
    "server-error": (500, "text/plain", b"oops"),
}


@pytest.fixture(params=list(ANSWERS))
def junk_account(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MicrosoftAccount]:
    status, content_type, body = ANSWERS[request.param]

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    root = f"https://127.0.0.1:{server.server_address[1]}"
    yield MicrosoftAccount(tenant_id="t", client_id="c", client_secret="s",
                           authority_url=root, graph_url=root + "/v1.0", ca_file=str(ca_file),
                           timeout=5, retry=RetryPolicy(attempts=1))
    server.shutdown()
    server.server_close()


CALLS: dict[str, Callable[[MicrosoftConnector], Any]] = {
    "list_window": lambda c: c.list_window(CALENDAR, WINDOW),
    "changes_since": lambda c: c.changes_since(CALENDAR, "g1:junk", WINDOW),
    "events_in": lambda c: c.events_in(CALENDAR, WINDOW),
    "free_busy": lambda c: c.free_busy([CALENDAR], WINDOW),
    "read_event": lambda c: c.read_event(CALENDAR, "bk-junk", source="abc"),
    "create_event": lambda c: c.create_event(CALENDAR, DRAFT),
    "update_event": lambda c: c.update_event(CALENDAR, DRAFT, source="abc"),
    "delete_event": lambda c: c.delete_event(CALENDAR, "bk-junk"),
    "start_channel": lambda c: c.start_channel(CALENDAR, address="https://x/hooks/microsoft",
                                               token="t", ttl_seconds=60),
    "renew_channel": lambda c: c.renew_channel(CHANNEL, ttl_seconds=60),
    "stop_channel": lambda c: c.stop_channel(CHANNEL),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_every_call_against_nonsense_raises_only_connector_errors(
    junk_account: MicrosoftAccount, call: str
) -> None:
    connector = MicrosoftConnector(junk_account)
    try:
        CALLS[call](connector)
    except Exception as exc:  # the one acceptable way to fail is the error tree
        assert isinstance(exc, ConnectorError), f"{type(exc).__module__}.{exc!r} escaped"
        assert exc.calendar == CALENDAR.id
    finally:
        connector.close()


@given(st.binary(max_size=300), st.sampled_from(["application/json", "text/plain", ""]))
def test_any_delivery_parses_or_is_refused(body: bytes, content_type: str) -> None:
    try:
        notes = push.parse({"Content-Type": content_type}, body)
    except PermanentError:
        return
    assert notes and all(note.channel_id for note in notes)
