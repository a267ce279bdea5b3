"""Signed outbound webhooks of booking events (Standard Webhooks).

The booking repository records an event in the transaction of every
change (``engine.store.webhooks``), so an event exists exactly when its
change committed.  :class:`WebhookDispatcher` turns each event into one
delivery per endpoint that wants it, then sends due deliveries: ``POST url``
with ``{"type", "timestamp", "data": <booking document>}`` and the headers
``webhook-id`` (stable for the event at that endpoint, so a receiver can
drop a repeat), ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``).  The body is
rendered at the first attempt and kept, so a retry sends the same bytes;
its ``data`` is the booking as it stood then.

A 2xx ends a delivery; anything else is retried with exponential backoff
until ``give_up_after`` (24 h) from the event's dispatch, then recorded as
failed.  Deliveries run on the scheduler's thread, never a request's, and
each attempt is bounded by the sender's timeout: a dead endpoint delays no
booking, and other endpoints' deliveries are claimed beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.core.model import Booking
from engine.errors import TransientError
from engine.ports import WebhookSender
from engine.store import BookingEvent, StatusChange, Store, UnitOfWork, WebhookDelivery

log = logging.getLogger(__name__)

EVENTS = ("booking.created", "booking.confirmed", "booking.rescheduled", "booking.cancelled",
          "booking.failed", "booking.room_changed")
SECRET_PREFIX = "whsec_"

# Renders the booking document a delivery carries as ``data``.
Render = Callable[[Booking, Sequence[StatusChange]], Mapping[str, Any]]


def decode_secret(text: str) -> bytes:
    """The key of a Standard Webhooks secret (``whsec_`` + base64); raises
    ``ValueError`` with a sentence for anything else."""
    if not text.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret is written whsec_ followed by base64")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise ValueError("the part after whsec_ is not base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret must hold at least 16 bytes")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``'s value for one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ``[[webhooks]]`` entry; ``event_types`` empty means all."""

    url: str
    key: bytes = field(repr=False)
    events: frozenset[str]
    event_types: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """A digest of the URL: stored with each delivery, so the secret and
        the URL stay in the config."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    def wants(self, kind: str, event_type: str) -> bool:
        return kind in self.events and (not self.event_types or event_type in self.event_types)


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    first_wait: timedelta = timedelta(seconds=10)
    max_wait: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    hold_for: timedelta = timedelta(minutes=2)
    batch: int = 20

    def retry_at(self, now: datetime, attempts: int, created_at: datetime,
                 rng: random.Random) -> datetime | None:
        """When to try again (full jitter on the upper half), or ``None`` past
        ``give_up_after``."""
        wait: timedelta = min(self.max_wait, self.first_wait * 2 ** max(0, attempts - 1))
        wait = wait / 2 + wait / 2 * rng.random()
        at = now + wait
        return at if at - created_at <= self.give_up_after else None


@dataclass
class WebhookReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def message_id(delivery: WebhookDelivery) -> str:
    """Stable for one event at one endpoint, across attempts and restarts."""
    return f"msg_{delivery.event_id}_{delivery.endpoint[:12]}"


class WebhookDispatcher:
    """Fans events out to the endpoints and sends the due deliveries."""

    def __init__(self, store: Store, endpoints: Sequence[Endpoint], sender: WebhookSender,
                 render: Render, *, policy: WebhookPolicy | None = None,
                 rng: random.Random | None = None, name: str | None = None) -> None:
        self._store = store
        self._endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self._sender = sender
        self._render = render
        self._policy = policy or WebhookPolicy()
        self._rng = rng or random.SystemRandom()
        self.name = name or f"webhooks-{uuid.uuid4().hex[:12]}"

    def close(self) -> None:
        close = getattr(self._sender, "close", None)
        if callable(close):
            close()

    def drain(self, now: datetime) -> WebhookReport:
        self._fan_out(now)
        report = WebhookReport()
        while True:
            with self._store.unit_of_work() as uow:
                claimed = uow.webhooks.claim(self.name, now, hold_for=self._policy.hold_for,
                                             limit=self._policy.batch)
                uow.commit()
            if not claimed:
                return report
            for delivery in claimed:
                self._send(delivery, now, report)

    def _fan_out(self, now: datetime) -> None:
        while True:
            with self._store.unit_of_work() as uow:
                events = uow.webhooks.undispatched(limit=200)
                if not events:
                    return
                for event in events:
                    uow.webhooks.fan_out(event, self._wanting(uow, event), now)
                uow.commit()

    def _wanting(self, uow: UnitOfWork, event: BookingEvent) -> list[str]:
        kind = f"booking.{event.type}"
        if kind not in EVENTS or not self._endpoints:
            return []
        booking = uow.bookings.get(event.booking_id)
        if booking is None:
            return []
        return [name for name, endpoint in self._endpoints.items()
                if endpoint.wants(kind, booking.event_type)]

    def _send(self, delivery: WebhookDelivery, now: datetime, report: WebhookReport) -> None:
        endpoint = self._endpoints.get(delivery.endpoint)
        if endpoint is None:
            self._give_up(delivery, now, "the endpoint left the config", report)
            return
        body = delivery.body or self._body(delivery)
        if body is None:
            self._give_up(delivery, now, "the booking is gone (purged)", report)
            return
        identifier = message_id(delivery)
        # The moment of sending, by the machine's clock, whatever ``now`` the
        # scheduler passes: receivers refuse timestamps far from their own.
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": identifier,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(endpoint.key, identifier, timestamp, body.encode()),
        }
        try:
            status = self._sender.post(endpoint.url, body.encode(), headers)
        except TransientError as exc:
            self._retry(delivery, now, str(exc), report)
            return
        if 200 <= status < 300:
            with self._store.unit_of_work() as uow:
                uow.webhooks.complete(delivery.id, self.name, now)
                uow.commit()
            report.sent += 1
        else:
            self._retry(delivery, now, f"{endpoint.url} answered {status}", report)

    def _body(self, delivery: WebhookDelivery) -> str | None:
        with self._store.unit_of_work() as uow:
            booking = uow.bookings.get(delivery.booking_id)
            if booking is None:
                return None
            document = self._render(booking, uow.bookings.history(booking.id))
            body = json.dumps({"type": f"booking.{delivery.type}",
                               "timestamp": delivery.at.isoformat(), "data": document},
                              ensure_ascii=False, separators=(",", ":"))
            uow.webhooks.keep_body(delivery.id, body)
            uow.commit()
        return body

    def _retry(self, delivery: WebhookDelivery, now: datetime, error: str,
               report: WebhookReport) -> None:
        retry_at = self._policy.retry_at(now, delivery.attempts, delivery.created_at, self._rng)
        if retry_at is None:
            self._give_up(delivery, now, error, report)
            return
        with self._store.unit_of_work() as uow:
            uow.webhooks.fail(delivery.id, self.name, error, retry_at=retry_at, now=now)
            uow.commit()
        report.retried += 1

    def _give_up(self, delivery: WebhookDelivery, now: datetime, error: str,
                 report: WebhookReport) -> None:
        with self._store.unit_of_work() as uow:
            uow.webhooks.fail(delivery.id, self.name, error, retry_at=None, now=now)
            uow.commit()
        report.failed += 1
        log.warning("webhook %s of booking %s given up after %d attempts: %s",
                    message_id(delivery), delivery.booking_id, delivery.attempts, error)
