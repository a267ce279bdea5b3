"""Signed webhook deliveries to a real HTTP receiver on loopback, verified
with the Standard Webhooks reference library (``standardwebhooks``)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from connectors.webhook import HttpWebhookSender
from engine.core.model import Attendee, Booking, BookingStatus
from engine.services.webhooks import (
    Endpoint,
    WebhookDispatcher,
    WebhookPolicy,
    decode_secret,
    signature,
)
from engine.store import Store

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
ALL = frozenset({"booking.created", "booking.confirmed", "booking.cancelled",
                 "booking.rescheduled", "booking.failed", "booking.room_changed"})


class Receiver:
    """An HTTP server that records each POST and answers from a script."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def verified(self) -> list[tuple[str, dict[str, Any]]]:
        """``(webhook-id, payload)`` of each delivery, signature checked."""
        hook = Webhook(SECRET)
        found = []
        for headers, body in self.received:
            payload = hook.verify(body, {k: headers[k] for k in (
                "webhook-id", "webhook-timestamp", "webhook-signature")})
            found.append((headers["webhook-id"], payload))
        return found

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


def render(booking: Booking, history: Any) -> dict[str, Any]:
    return {"id": booking.id, "status": booking.status.value, "history": len(history)}


def dispatcher(store: Store, url: str, *, events: frozenset[str] = ALL,
               policy: WebhookPolicy | None = None, name: str | None = None
               ) -> WebhookDispatcher:
    endpoint = Endpoint(url, decode_secret(SECRET), events)
    return WebhookDispatcher(store, [endpoint], HttpWebhookSender(timeout=5), render,
                             policy=policy, name=name)


def book(store: Store, booking_id: str = "b1") -> None:
    start = NOW + timedelta(days=1)
    with store.unit_of_work() as uow:
        uow.bookings.reserve(Booking(
            id=booking_id, event_type="consult", start=start, end=start + timedelta(hours=1),
            owner="alice", rooms={"rooms": "room-a"}, booked_at=NOW,
            attendee=Attendee("Ann", "ann@example.com")))
        uow.commit()


def test_each_event_arrives_once_signed_with_a_stable_id(store: Store, receiver: Receiver
                                                         ) -> None:
    book(store)
    with store.unit_of_work() as uow:
        uow.bookings.set_status("b1", BookingStatus.CONFIRMED, NOW)
        uow.commit()
    hooks = dispatcher(store, receiver.url)

    report = hooks.drain(NOW)
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert hooks.drain(NOW + timedelta(minutes=5)).sent == 0  # nothing twice

    delivered = receiver.verified()
    assert [payload["type"] for _, payload in delivered] == ["booking.created",
                                                            "booking.confirmed"]
    assert all(payload["data"]["id"] == "b1" for _, payload in delivered)
    assert len({identifier for identifier, _ in delivered}) == 2


def test_an_endpoint_gets_only_the_events_it_names(store: Store, receiver: Receiver) -> None:
    book(store)
    with store.unit_of_work() as uow:
        uow.bookings.set_status("b1", BookingStatus.CANCELLED, NOW)
        uow.commit()
    dispatcher(store, receiver.url, events=frozenset({"booking.cancelled"})).drain(NOW)
    assert [payload["type"] for _, payload in receiver.verified()] == ["booking.cancelled"]


def test_a_500_is_retried_with_the_same_id_and_body(store: Store, receiver: Receiver) -> None:
    receiver.answers = [500]
    book(store)
    hooks = dispatcher(store, receiver.url)
    assert hooks.drain(NOW).retried == 1
    later = NOW + timedelta(hours=1)
    assert hooks.drain(later).sent == 1
    (first_headers, first_body), (second_headers, second_body) = receiver.received
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    assert first_body == second_body
    assert receiver.verified()[1][1]["type"] == "booking.created"


def test_a_restart_mid_delivery_resends_the_same_message(store: Store, receiver: Receiver
                                                         ) -> None:
    """The first process claimed the delivery and died before recording the
    answer: the next one takes it over once the claim ran out, under the
    same webhook-id, so the receiver can drop the repeat."""
    book(store)
    policy = WebhookPolicy(hold_for=timedelta(minutes=2))
    dead = dispatcher(store, receiver.url, policy=policy, name="dead")
    dead._fan_out(NOW)
    with store.unit_of_work() as uow:
        claimed = uow.webhooks.claim("dead", NOW, hold_for=policy.hold_for)
        uow.commit()
    assert len(claimed) == 1

    restarted = dispatcher(store, receiver.url, policy=policy, name="restarted")
    assert restarted.drain(NOW + timedelta(minutes=1)).sent == 0  # still claimed
    assert restarted.drain(NOW + timedelta(minutes=3)).sent == 1
    assert [payload["type"] for _, payload in receiver.verified()] == ["booking.created"]


def test_a_dead_endpoint_is_given_up_after_a_day(store: Store) -> None:
    book(store)
    hooks = dispatcher(store, "http://127.0.0.1:9/hook")  # discard port: refused
    assert hooks.drain(NOW).retried == 1
    now = NOW
    for _ in range(100):
        now += timedelta(hours=2)
        if hooks.drain(now).failed:
            break
    assert now - NOW <= timedelta(hours=26)
    with store.reader() as uow:
        assert uow.webhooks.counts() == {"failed": 1}


def test_the_signature_is_standard_webhooks() -> None:
    key = decode_secret(SECRET)
    body = json.dumps({"type": "booking.created"}).encode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    headers["webhook-signature"] = signature(key, "msg_1", int(headers["webhook-timestamp"]), body)
    assert Webhook(SECRET).verify(body, headers) == {"type": "booking.created"}
    for bad in ("secret", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            decode_secret(bad)
