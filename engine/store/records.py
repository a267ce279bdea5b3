"""Plain values the repositories return besides the engine-core model.

Frozen dataclasses, aware UTC datetimes: nothing from SQLAlchemy leaves the
store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.core.model import Attendee, BookingStatus, Interval


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncState:
    """Where the sync of one calendar stands.

    ``version`` moves on every committed change to the calendar's cached
    events or reservations, so a process can tell that its in-memory busy
    intervals are stale.
    """

    calendar: str
    cursor: str | None
    window: Interval | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    version: int
    unreadable: Mapping[str, str] = field(default_factory=dict)
    """Objects the connector fetched but could not read: source → reason."""

    @property
    def failed(self) -> bool:
        """The most recent attempt failed (no success since the last error)."""
        if self.last_error_at is None:
            return False
        return self.last_success_at is None or self.last_error_at >= self.last_success_at


@dataclass(frozen=True, slots=True)
class StatusChange:
    at: datetime
    status: BookingStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    """One room assignment of a pool, for the assignment methods."""

    room: str
    booked_at: datetime
    booking_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxJob:
    id: int
    kind: str
    payload: Mapping[str, Any]
    booking_id: str | None
    attempts: int
    due_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A one-time booking link; only the token's sha256 is ever stored."""

    token_sha256: str
    event_type: str
    created_at: datetime
    expires_at: datetime
    attendee: Attendee | None = None
    used_at: datetime | None = None
    booking_id: str | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at


class IdempotencyState(enum.Enum):
    NEW = "new"  # the caller owns the key now and must finish or abandon it
    IN_PROGRESS = "in_progress"  # another request with this key is still running
    MISMATCH = "mismatch"  # the key was used with another request body
    REPLAY = "replay"  # the stored answer is in ``status`` and ``body``


@dataclass(frozen=True, slots=True)
class IdempotencyOutcome:
    state: IdempotencyState
    status: int | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class BookingEvent:
    """Something that happened to a booking: ``type`` is ``created``,
    ``confirmed``, ``rescheduled``, ``room_changed``, ``cancelled`` or
    ``failed``."""

    id: int
    booking_id: str
    type: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDelivery:
    """One event's delivery to one endpoint (a digest of its URL)."""

    id: int
    event_id: int
    endpoint: str
    state: str
    attempts: int
    booking_id: str
    type: str
    at: datetime
    created_at: datetime
    body: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailDelivery:
    """One email to a booking's attendee: ``kind`` is the booking event it
    tells of (confirmed, rescheduled, cancelled)."""

    id: int
    booking_id: str
    kind: str
    state: str
    attempts: int
    created_at: datetime
    manage_token: str | None = field(default=None, repr=False)
    message: str | None = field(default=None, repr=False)
    last_error: str | None = None


class DeliveryHow(enum.StrEnum):
    """How a calendar gets its copy of a booking's event."""

    WRITTEN = "written"  # calpool writes the copy (CalDAV, another account)
    INVITED = "invited"  # an attendee of the owner's event; its provider delivers it


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # not written yet, or an invited room not answered yet
    WRITTEN = "written"
    ACCEPTED = "accepted"  # an invited room accepted
    DECLINED = "declined"  # an invited room declined (or did not answer in time)
    REMOVED = "removed"  # taken out again (cancelled, failed, the room swapped away)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What calpool did about one calendar of one booking: where the copy
    is on the provider (``source``, ``etag``, ``sequence``; the owner's event
    for an invited room), and an invited room's last ``answer``."""

    booking_id: str
    calendar: str
    how: DeliveryHow
    state: DeliveryState
    source: str = ""
    etag: str = ""
    sequence: int = 0
    answer: str | None = None
    answered_at: datetime | None = None
    since: datetime
    updated_at: datetime
