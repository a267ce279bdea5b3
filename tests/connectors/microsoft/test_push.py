"""Graph subscriptions through the Microsoft connector, against the fake and
an https receiver of this test that answers as calpool's ``/hooks/microsoft``
does (the connector parses each delivery: the validation handshake is
answered with its reply, notifications with 202).  The contract suite
cannot run these cases for Graph: Graph calls the notification address
before a subscription exists, and nobody serves the suite's address."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors.microsoft import MicrosoftConnector, push
from engine.core.model import Interval
from engine.errors import ConnectorError, PermanentError
from engine.ports import CalendarRef, Notification, NotificationKind, PushChannel
from tests.fakes.graph import GraphFake

TOKEN = "a-client-state-of-calpool"
WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 3, 31, tzinfo=UTC))


class Receiver:
    """An https endpoint on loopback that hands every delivery to the connector."""

    def __init__(self, fake: GraphFake, connector: MicrosoftConnector) -> None:
        self.notes: list[Notification] = []
        self.refuse_handshakes = False
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                query = dict(parse_qsl(urlsplit(self.path).query))
                notes = connector.parse_notification(dict(self.headers.items()), body, query)
                reply = notes[0].reply
                if reply is not None and not receiver.refuse_handshakes:
                    payload = reply.body.encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                with lock:
                    receiver.notes.extend(n for n in notes if n.reply is None)
                self.send_response(202 if reply is None else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        cert, key = fake.issue_cert("127.0.0.1")
        fake.receiver_ca_file = fake.ca_file
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.address = f"https://127.0.0.1:{self._server.server_address[1]}/hooks/microsoft"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def eventually(self, wanted: Callable[[Notification], bool], within: float = 10.0
                   ) -> Notification:
        deadline = time.monotonic() + within
        while True:
            found = next((n for n in list(self.notes) if wanted(n)), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline, f"no such delivery in {self.notes}"
            time.sleep(0.05)


@pytest.fixture
def receiver(fake: GraphFake, connector: MicrosoftConnector) -> Iterator[Receiver]:
    made = Receiver(fake, connector)
    yield made
    made.close()


def _event(subject: str) -> dict[str, object]:
    return {"subject": subject,
            "start": {"dateTime": "2027-03-02T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-02T11:00:00", "timeZone": "UTC"}}


def _of(channel: PushChannel, kind: NotificationKind) -> Callable[[Notification], bool]:
    return lambda n: (n.channel_id, n.token, n.kind) == (channel.id, TOKEN, kind)


def test_a_subscription_validates_notifies_renews_and_stops(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef, receiver: Receiver
) -> None:
    cursor = connector.list_window(mailbox, WINDOW).cursor
    before = fake.clock()
    channel = connector.start_channel(mailbox, address=receiver.address, token=TOKEN,
                                      ttl_seconds=3600)
    assert channel is not None and channel.calendar_id == mailbox.id
    assert before < channel.expires_at <= fake.clock() + timedelta(seconds=3600)
    validations = [url for url, _, _ in fake.deliveries if "validationToken=" in url]
    assert validations and all(url.startswith(receiver.address) for url in validations)

    created = fake.create(mailbox.id, _event("pushed"))["id"]
    receiver.eventually(_of(channel, NotificationKind.CHANGED))
    assert list(connector.changes_since(mailbox, cursor, WINDOW).objects) == [created]

    renewed = connector.renew_channel(channel, ttl_seconds=7200)
    assert renewed.id == channel.id and renewed.expires_at > channel.expires_at

    witness = connector.start_channel(mailbox, address=receiver.address, token=TOKEN,
                                      ttl_seconds=600)
    assert witness is not None
    connector.stop_channel(renewed)
    connector.stop_channel(renewed)  # already gone: fine
    receiver.notes.clear()
    fake.create(mailbox.id, _event("unheard"))
    # The witness hears of the change; by then the stopped channel would have too.
    receiver.eventually(_of(witness, NotificationKind.CHANGED))
    assert fake.subscriptions[channel.id]["deleted"]
    assert [n for n in receiver.notes if n.channel_id == channel.id] == []


@pytest.mark.parametrize(("event", "kind"), [
    ("missed", NotificationKind.MISSED),
    ("reauthorizationRequired", NotificationKind.REAUTHORIZE),
    ("subscriptionRemoved", NotificationKind.REMOVED),
])
def test_lifecycle_events_reach_the_engine_as_their_kind(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef, receiver: Receiver,
    event: str, kind: NotificationKind,
) -> None:
    channel = connector.start_channel(mailbox, address=receiver.address, token=TOKEN,
                                      ttl_seconds=600)
    assert channel is not None
    fake.send_lifecycle(channel.id, event)
    receiver.eventually(_of(channel, kind))


def test_an_address_that_fails_the_handshake_opens_no_subscription(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef, receiver: Receiver
) -> None:
    receiver.refuse_handshakes = True
    with pytest.raises(ConnectorError) as caught:
        connector.start_channel(mailbox, address=receiver.address, token=TOKEN, ttl_seconds=60)
    assert isinstance(caught.value, PermanentError) and caught.value.calendar == mailbox.id


def test_the_validation_token_is_echoed_as_text() -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 1"
    (note,) = push.parse({}, b"", {"validationToken": token})
    assert note.kind is NotificationKind.HANDSHAKE and note.reply is not None
    assert (note.reply.status, note.reply.content_type, note.reply.body) == (
        200, "text/plain", token)
