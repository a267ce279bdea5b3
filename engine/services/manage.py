"""The customer's side of a booking: the manage token, and cancelling or
rescheduling by it.

Every booking made through a link or the API gets a manage token: 256
random bits from :mod:`secrets`, URL-safe, shown once (the page's redirect,
``manage_url`` in the answer to the creating request, the confirmation
email) and stored only as its sha256 (``engine.store.manage``), like a
link's token.  It is written in the booking's own transaction: the caller
passes :meth:`ManageService.issuer`'s hook as the booking's ``on_reserved``
(composed with its own hook), so a booking never exists without its token
nor a token without its booking.

The token holder may cancel or reschedule the booking until the event
type's ``change_notice`` before its start (:func:`change_deadline`); after
that the page names the owner to contact instead.  Rescheduling keeps each
room where free, like the API (:class:`RescheduleService`).

::

    ManageError
    ├── ManageNotFound   no booking has this token (nothing more is said)
    └── ChangeClosed     too close to the start (``deadline``), or the
                         booking is cancelled or failed (``deadline`` None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import Booking, BookingStatus, EventType, as_utc
from engine.services.booking import BookingNotFound, BookingOutcome, BookingService, OnReserved
from engine.services.links import new_token, token_digest
from engine.services.reschedule import BookingNotReschedulable, RescheduleService
from engine.store import StatusChange, Store, UnitOfWork


class ManageError(Exception):
    """The manage token cannot serve the request; the subclass says why."""


class ManageNotFound(ManageError):
    def __init__(self) -> None:
        # Deliberately without the token: an answer must not echo a guess.
        super().__init__("there is no booking for this link")


class ChangeClosed(ManageError):
    """The booking can no longer be changed by its customer."""

    def __init__(self, booking: Booking, detail: str, deadline: datetime | None) -> None:
        super().__init__(detail)
        self.booking = booking
        self.detail = detail
        self.deadline = deadline


class IssuedToken:
    """Where :meth:`ManageService.issuer`'s hook leaves the token it wrote:
    ``value`` is set once the booking's transaction has run the hook (and
    is meaningful only when the attempt booked)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: str | None = None


@dataclass(frozen=True, slots=True)
class ManagedBooking:
    """A booking as its customer sees it."""

    booking: Booking
    history: tuple[StatusChange, ...]
    event_type: EventType | None
    deadline: datetime | None
    """Until when the customer may change it; ``None`` when it cannot change
    at all (cancelled, failed, or its event type is gone)."""
    now: datetime

    @property
    def changeable(self) -> bool:
        return self.deadline is not None and self.now <= self.deadline


def change_deadline(booking: Booking, event_type: EventType | None) -> datetime | None:
    """The last instant the customer may cancel or reschedule ``booking``."""
    if event_type is None or not booking.status.is_active:
        return None
    return booking.start - max(event_type.change_notice, timedelta(0))


class ManageService:
    """Issues manage tokens and serves their holders; see the module docstring."""

    def __init__(self, store: Store, bookings: BookingService, reschedule: RescheduleService,
                 event_types: Mapping[str, EventType], *, mail: bool = False) -> None:
        self._store = store
        self._mail = mail
        self._bookings = bookings
        self._reschedule = reschedule
        self._event_types = event_types

    def issuer(self, then: OnReserved | None = None) -> tuple[OnReserved, IssuedToken]:
        """An ``on_reserved`` hook that runs ``then`` (when given) and writes a
        new manage token for the booking (and, with ``mail``, the waiting
        confirmation email that carries it), and where it leaves the token."""
        issued = IssuedToken()

        def issue(uow: UnitOfWork, booking: Booking) -> None:
            if then is not None:
                then(uow, booking)
            token = new_token()
            uow.manage_tokens.create(token_digest(token), booking.id, booking.booked_at)
            if self._mail and booking.attendee is not None and booking.attendee.email:
                # The confirmation email carries the token: the one place
                # it is kept, until that email is finished.
                uow.emails.await_confirmation(booking.id, token, booking.booked_at)
            issued.value = token

        return issue, issued

    def open(self, token: str, now: datetime) -> ManagedBooking:
        """The booking of ``token``; raises :class:`ManageNotFound`."""
        with self._store.reader() as uow:
            booking_id = uow.manage_tokens.booking_of(token_digest(token))
            booking = uow.bookings.get(booking_id) if booking_id is not None else None
            if booking is None:
                raise ManageNotFound()
            history = tuple(uow.bookings.history(booking.id))
        event_type = self._event_types.get(booking.event_type)
        return ManagedBooking(booking, history, event_type, change_deadline(booking, event_type),
                              as_utc(now, what="now"))

    def cancel(self, token: str, now: datetime) -> ManagedBooking:
        """Cancel the booking of ``token``.  Cancelling a cancelled booking
        changes nothing.  Raises :class:`ManageNotFound` and
        :class:`ChangeClosed` (too late, or the booking failed)."""
        managed = self.open(token, now)
        if managed.booking.status is BookingStatus.CANCELLED:
            return managed
        self._check_changeable(managed, "cancelled")
        try:
            self._bookings.cancel(managed.booking.id, managed.now)
        except BookingNotFound:
            raise ManageNotFound() from None
        return self.open(token, now)

    def reschedule(self, token: str, start: datetime, now: datetime) -> BookingOutcome:
        """Move the booking of ``token`` to ``start``, as the API does (see
        :meth:`RescheduleService.attempt`).  Raises :class:`ManageNotFound`
        and :class:`ChangeClosed`; a start the rules refuse is an outcome."""
        managed = self.open(token, now)
        self._check_changeable(managed, "rescheduled")
        try:
            return self._reschedule.attempt(managed.booking.id, start, managed.now)
        except BookingNotFound:
            raise ManageNotFound() from None
        except BookingNotReschedulable as exc:  # cancelled or failed meanwhile
            raise ChangeClosed(managed.booking, exc.detail, None) from exc

    def _check_changeable(self, managed: ManagedBooking, verb: str) -> None:
        booking = managed.booking
        if managed.deadline is None:
            raise ChangeClosed(booking, f"the booking is {booking.status.value} and can no "
                                        f"longer be {verb}", None)
        if managed.now > managed.deadline:
            raise ChangeClosed(booking, f"the booking can no longer be {verb} here: that was "
                                        "possible until its change notice before the start",
                               managed.deadline)
