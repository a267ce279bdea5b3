"""One-time booking links: a customer books exactly once, by the link alone.

A link's token is 256 random bits from :mod:`secrets`, URL-safe; the store
keeps only its sha256 (``engine.store.links``), so a leaked database hands
out no bookable link.  A presented token is hashed first and then looked up
by its digest: the lookup compares digests, never the secret, so its timing
says nothing about how close a guess came.  The digest doubles as the
link's ``id`` for listing and revoking (it books nothing).

Using a link is part of the booking's own transaction: the booking service
runs :meth:`LinkService.book`'s ``spend`` inside the reservation's unit of
work, and the store spends the link with one conditional update, so of any
number of concurrent uses exactly one commits a booking; the others roll
back whole.  A racer that lost can also fail earlier, on the slot the
winner just took; the link's state is then the answer (used, not
``slot-unavailable``).  A booking that ends ``failed`` gives its link back
(the outbox does it in the failure's transaction).

::

    LinkError
    ├── LinkNotFound    no link has this token (nothing more is said)
    ├── LinkUsed        spent on a booking
    ├── LinkExpired     past its expiry, revoked, or its event type is gone
    └── InvalidLink     a malformed request (``field``, ``detail``)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from engine.core.model import Attendee, Booking, as_utc
from engine.services.booking import (
    BookingOutcome,
    BookingService,
    InvalidBooking,
    OnReserved,
    UnknownEventType,
    check_attendee,
)
from engine.store import Link, Store, UnitOfWork

TOKEN_BYTES = 32
_DIGEST = re.compile(r"[0-9a-f]{64}")


class LinkError(Exception):
    """A link cannot serve the request; the subclass says why."""


class LinkNotFound(LinkError):
    def __init__(self) -> None:
        # Deliberately without the token: an answer must not echo a guess.
        super().__init__("there is no such link")


class LinkUsed(LinkError):
    def __init__(self, link: Link) -> None:
        super().__init__("the link was used already")
        self.link = link


class LinkExpired(LinkError):
    def __init__(self, link: Link, detail: str) -> None:
        super().__init__(detail)
        self.link = link
        self.detail = detail


class InvalidLink(LinkError):
    """The request is malformed (HTTP 422): ``field`` names what is wrong."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def new_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The sha256 of ``token`` in hex: what the store keeps, and the link's id."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_link_id(text: str) -> bool:
    """Whether ``text`` is a link id (a digest) rather than a token: tokens
    are 43 characters, ids 64 hex digits, so the two never meet."""
    return _DIGEST.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A link just created: the only moment its token is known."""

    token: str
    link: Link

    @property
    def id(self) -> str:
        return self.link.token_sha256


class LinkService:
    """Creates, lists, revokes and books through one-time links."""

    def __init__(self, store: Store, bookings: BookingService, event_types: Mapping[str, object],
                 *, default_expiry: timedelta) -> None:
        self._store = store
        self._bookings = bookings
        self._event_types = event_types
        self._default_expiry = default_expiry

    def create(
        self, event_type: str, now: datetime, *, expires_in: timedelta | None = None,
        attendee: Attendee | None = None,
    ) -> IssuedLink:
        """A new link to book ``event_type`` once within ``expires_in``
        (default: the configured expiry), optionally for ``attendee``.
        Raises :class:`~engine.services.booking.UnknownEventType` and
        :class:`InvalidLink`."""
        if event_type not in self._event_types:
            raise UnknownEventType(event_type)
        expires_in = self._default_expiry if expires_in is None else expires_in
        if expires_in <= timedelta(0):
            raise InvalidLink("expires_in", "a link must stay valid for some time")
        if attendee is not None:
            try:
                check_attendee(attendee)
            except InvalidBooking as exc:
                raise InvalidLink(exc.field, exc.detail) from exc
        now = as_utc(now, what="now")
        try:
            expires_at = now + expires_in
        except OverflowError:
            raise InvalidLink("expires_in", "the expiry lies past the year 9999") from None
        token = new_token()
        link = Link(token_sha256=token_digest(token), event_type=event_type, created_at=now,
                    expires_at=expires_at, attendee=attendee)
        with self._store.unit_of_work() as uow:
            uow.links.create(link)
            uow.commit()
        return IssuedLink(token, link)

    def unused(self, now: datetime) -> list[Link]:
        """Links that can still be used, soonest expiry first."""
        with self._store.reader() as uow:
            return uow.links.unused(as_utc(now, what="now"))

    def revoke(self, token_or_id: str, now: datetime) -> Link:
        """Revoke an unused link, named by its token or its id.  Revoking a
        revoked or expired link again changes nothing (idempotent).  Raises
        :class:`LinkNotFound` and :class:`LinkUsed` (a spent link stays
        with its booking: cancel the booking instead)."""
        digest = token_or_id if is_link_id(token_or_id) else token_digest(token_or_id)
        with self._store.unit_of_work() as uow:
            link = uow.links.get(digest)
            if link is None:
                raise LinkNotFound()
            if link.used_at is not None:
                raise LinkUsed(link)
            if link.revoked_at is None:
                uow.links.revoke(digest, now)
                uow.commit()
                link = replace(link, revoked_at=as_utc(now, what="now"))
        return link

    def open(self, token: str, now: datetime) -> Link:
        """The usable link of ``token``; raises :class:`LinkNotFound`,
        :class:`LinkUsed` or :class:`LinkExpired`."""
        digest = token_digest(token)
        with self._store.reader() as uow:
            link = uow.links.get(digest)
        if link is None:
            raise LinkNotFound()
        self._check_usable(link, now)
        return link

    def book(
        self,
        token: str,
        start: datetime,
        attendee: Attendee | None,
        notes: str,
        now: datetime,
        *,
        confirm_within: timedelta,
        on_reserved: OnReserved | None = None,
    ) -> BookingOutcome:
        """Book ``start`` through the link and wait like
        :meth:`BookingService.attempt`; ``on_reserved`` runs in the
        reservation's transaction after the link is spent.  ``attendee`` is required unless the
        link names one, and refused when it does (:class:`InvalidLink`).
        Raises the link errors and :class:`UnknownEventType`; a failed
        booking is an outcome like any other (its link is usable again)."""
        link = self.open(token, now)
        if link.attendee is not None and attendee is not None:
            raise InvalidLink("attendee", "this link is for a named attendee; send no attendee")
        if link.attendee is None and attendee is None:
            raise InvalidLink("attendee", "the attendee's name and email are required")
        who = link.attendee or attendee
        assert who is not None
        spend = self._spender(link.token_sha256, now)
        hook = spend
        if on_reserved is not None:
            then = on_reserved

            def hook(uow: UnitOfWork, booking: Booking) -> None:
                spend(uow, booking)
                then(uow, booking)

        outcome = self._bookings.attempt(link.event_type, start, who, notes, now,
                                         confirm_within=confirm_within, on_reserved=hook)
        if not outcome.result.booked:
            # A racer that lost the link may have lost the slot first (to
            # the winner's booking): then the link's state is the answer.
            self._check_usable(self._current(link.token_sha256), now)
        return outcome

    # ---- internals --------------------------------------------------------------------------

    def _spender(self, digest: str, now: datetime) -> Callable[[UnitOfWork, Booking], None]:
        def spend(uow: UnitOfWork, booking: Booking) -> None:
            if not uow.links.use(digest, booking.id, now):
                # Raised inside the reservation's unit of work: it rolls back whole.
                link = uow.links.get(digest)
                if link is None:
                    raise LinkNotFound()
                self._check_usable(link, now)
                raise LinkUsed(link)  # usable by the clock, yet not spendable: a race

        return spend

    def _current(self, digest: str) -> Link:
        with self._store.reader() as uow:
            link = uow.links.get(digest)
        if link is None:
            raise LinkNotFound()
        return link

    def _check_usable(self, link: Link, now: datetime, cause: Exception | None = None) -> None:
        now = as_utc(now, what="now")
        if link.used_at is not None:
            raise LinkUsed(link) from cause
        if link.revoked_at is not None:
            raise LinkExpired(link, "the link was revoked") from cause
        if now >= link.expires_at:
            raise LinkExpired(link, "the link has expired") from cause
        if link.event_type not in self._event_types:
            raise LinkExpired(link, "the link's event type is no longer offered") from cause
