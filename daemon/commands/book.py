"""``calpool book``: reserve a slot and write the events, waiting for them."""

from __future__ import annotations

from datetime import timedelta

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import local_iso
from daemon.logs import configure
from engine.core.model import Attendee, BookingStatus
from engine.core.slots import SlotRejection
from engine.services.booking import InvalidBooking, ProviderUnavailable, SlotUnavailable

# A person at a terminal waits longer than an HTTP client for the provider
# writes; past this the booking stays pending and `calpool run` finishes it.
MIN_WAIT = timedelta(seconds=30)

REASONS = {
    SlotRejection.PAST: "the start is in the past",
    SlotRejection.MIN_NOTICE: "the start is sooner than the event type's minimum notice",
    SlotRejection.HORIZON: "the start is beyond the event type's booking horizon",
    SlotRejection.OUTSIDE_HOURS: "the start is outside working hours",
    SlotRejection.DAILY_LIMIT: "the owner's daily limit of these bookings is reached that day",
    SlotRejection.OWNER_BUSY: "the owner is busy then",
    SlotRejection.PERSON_BUSY: "a person who must attend is busy then",
    SlotRejection.NO_ROOM: "no room of a pool is free then",
    SlotRejection.OFF_GRID: "the start is not on the slot grid",
}


def run(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    event_type = invocation.event_type()
    zone = config.calendars[event_type.owner].timezone
    start = args.start.in_zone(zone)
    attendee = Attendee(args.name.strip(), args.email.strip())
    # The outcome is one sentence below; log records would only repeat it.
    quiet = "debug" if config.daemon.log_level == "debug" else "critical"
    configure(config.daemon.log_format, quiet, invocation.err)
    app = open_app(invocation)
    try:
        wait = max(config.http.confirm_within, MIN_WAIT)
        try:
            booking = app.bookings.book_and_wait(
                event_type.key, start, attendee, args.notes, app.clock(), confirm_within=wait
            )
        except InvalidBooking as exc:
            raise CommandFailed(f"{exc.detail} ({args.start.text})", 2) from exc
        except SlotUnavailable as exc:
            raise CommandFailed(
                f"the slot is taken: {REASONS[exc.reason]} ({exc.reason.value})"
            ) from exc
        except ProviderUnavailable as exc:
            raise CommandFailed(str(exc)) from exc
        history = app.bookings.history(booking.id)
    finally:
        app.close()
    if booking.status is BookingStatus.FAILED:
        detail = history[-1].detail if history else "a provider write failed"
        raise CommandFailed(f"booking {booking.id} failed: {detail}")
    if booking.status is not BookingStatus.CONFIRMED:
        raise CommandFailed(
            f"booking {booking.id} is reserved but its events are not all written yet; "
            "`calpool run` finishes or fails it (see `calpool bookings`)"
        )
    rooms = ", ".join(f"{pool}: {room}" for pool, room in booking.rooms.items()) or "none"
    print(
        f"booking {booking.id} confirmed: {local_iso(booking.start, zone)} - "
        f"{local_iso(booking.end, zone)}, rooms: {rooms}",
        file=invocation.out,
    )
    return 0
