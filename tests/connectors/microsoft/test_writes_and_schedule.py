"""Writes and live free/busy of the Microsoft connector against the Graph
fake: a retried create posts nothing twice, an invited room mailbox
answers on the owner's event, the customer is invited only when Exchange
should, an update that keeps the time keeps the answers, and getSchedule
in batches of 20 mailboxes and chunks under 62 days."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector
from connectors.microsoft.schedule import MAX_SCHEDULES
from engine.core.model import Attendee, AttendeeAnswer, Interval
from engine.errors import NotFound
from engine.ports import CalendarRef, EventDraft, EventState
from tests.fakes.graph import GraphFake, RoomAnswer

START = datetime(2027, 3, 10, 14, tzinfo=UTC)


def draft(booking_id: str, room: str = "", *, hour: int = 14, notify: bool = True) -> EventDraft:
    rooms = (Attendee("Havel", room),) if room else ()
    return EventDraft(
        booking_id=booking_id, title="Consultation",
        start=START.replace(hour=hour), end=START.replace(hour=hour, minute=30),
        attendees=(Attendee("Carol", "carol@example.net"),),
        rooms=rooms, invite=rooms, notify_attendee=notify)


def _posts(fake: GraphFake, mailbox: str) -> int:
    return sum(1 for method, path, _, _ in fake.requests
               if method == "POST" and path.endswith(f"{mailbox}/events"))


def eventually(read: Callable[[], EventState | None], answer: AttendeeAnswer, email: str,
               within: float = 15.0) -> EventState:
    """The state once ``email`` answered ``answer`` (polled; a room answers
    a moment after the invitation)."""
    deadline = time.monotonic() + within
    while True:
        state = read()
        if state is not None and state.answer_of(email) is answer:
            return state
        assert time.monotonic() < deadline, f"{email} did not answer {answer} (last: {state})"
        time.sleep(0.05)


def test_a_retried_create_finds_the_first_write_and_posts_nothing(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    first = connector.create_event(mailbox, draft("bk-retry"))
    posts = _posts(fake, mailbox.id)

    again = connector.create_event(mailbox, draft("bk-retry"))

    assert (again.source, again.uid) == (first.source, first.uid)
    assert _posts(fake, mailbox.id) == posts
    assert len(fake.events(mailbox.id)) == 1
    stored = fake.events(mailbox.id)[0]
    assert stored["transactionId"] and stored["singleValueExtendedProperties"][0]["value"] == (
        "bk-retry")


def test_an_invited_room_accepts_when_free_and_declines_when_busy(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    room = f"havel-{mailbox.id}"
    fake.add_room(room, name="Havel", answer=RoomAnswer.AUTO, delay=0.1)
    accepted = connector.create_event(mailbox, draft("bk-free", room))
    stored = fake.event(mailbox.id, accepted.source)
    assert stored is not None
    assert [(a["type"], a["emailAddress"]["address"]) for a in stored["attendees"]] == [
        ("required", "carol@example.net"), ("resource", room)]
    assert stored["location"]["displayName"] == "Havel"

    eventually(lambda: connector.read_event(mailbox, "bk-free", source=accepted.source),
               AttendeeAnswer.ACCEPTED, room)
    declined = connector.create_event(mailbox, draft("bk-busy", room))  # the same half hour
    eventually(lambda: connector.read_event(mailbox, "bk-busy", source=declined.source),
               AttendeeAnswer.DECLINED, room)


def test_an_update_at_the_same_time_keeps_the_rooms_answer(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    room = f"spree-{mailbox.id}"
    fake.add_room(room, name="Spree", answer=RoomAnswer.ACCEPT, delay=0.05)
    written = connector.create_event(mailbox, draft("bk-keep", room))
    state = eventually(lambda: connector.read_event(mailbox, "bk-keep", source=written.source),
                       AttendeeAnswer.ACCEPTED, room)

    retitled = replace(draft("bk-keep", room), title="Consultation (2)")
    updated = connector.update_event(mailbox, retitled, etag=state.etag, source=written.source)

    assert updated.answers[room] is AttendeeAnswer.ACCEPTED
    moved = connector.update_event(mailbox, draft("bk-keep", room, hour=9), source=written.source)
    assert moved.answers[room] is AttendeeAnswer.NEEDS_ACTION  # a new time: asked again


def test_without_notify_attendee_exchange_does_not_invite_the_customer(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    written = connector.create_event(mailbox, draft("bk-quiet", notify=False))
    stored = fake.event(mailbox.id, written.source)
    assert stored is not None and stored["attendees"] == []


def test_a_lost_event_is_found_by_its_booking_and_a_gone_one_is_not_found(
    fake: GraphFake, connector: MicrosoftConnector, mailbox: CalendarRef
) -> None:
    written = connector.create_event(mailbox, draft("bk-lost"))
    state = connector.read_event(mailbox, "bk-lost")  # no source kept: the property finds it
    assert state is not None and state.source == written.source
    fake.delete(mailbox.id, written.source)
    assert connector.read_event(mailbox, "bk-lost", source=written.source) is None
    try:
        connector.update_event(mailbox, draft("bk-lost"), source=written.source)
    except NotFound:
        pass
    else:
        raise AssertionError("an update of a deleted event must be NotFound")


def test_free_busy_goes_in_batches_of_twenty_and_chunks_under_62_days(
    fake: GraphFake, connector: MicrosoftConnector
) -> None:
    rooms = [CalendarRef(f"room-{n}-{id(fake)}@contoso.example") for n in range(25)]
    for room in rooms:
        fake.add_mailbox(room.id)
    window = Interval(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 5, 11, tzinfo=UTC))
    late = {"subject": "late", "showAs": "busy",
            "start": {"dateTime": "2027-05-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-05-01T11:00:00", "timeZone": "UTC"}}
    fake.create(rooms[22].id, late)
    fake.create(rooms[3].id, {**late, "showAs": "free"})
    # Across two chunks: reported as one interval, clipped to the window's end.
    fake.create(rooms[7].id, {**late, "start": {"dateTime": "2027-03-01T23:00:00",
                                                 "timeZone": "UTC"},
                              "end": {"dateTime": "2027-05-20T00:00:00", "timeZone": "UTC"}})
    missing = CalendarRef("nobody@contoso.example")
    asked_before = sum(1 for m, p, _, _ in fake.requests if p.endswith("/getSchedule"))

    answer = connector.free_busy([missing, *rooms], window)

    calls = sum(1 for m, p, _, _ in fake.requests if p.endswith("/getSchedule")) - asked_before
    batches = -(-(len(rooms) + 1) // MAX_SCHEDULES)
    chunks = -(-(window.end - window.start).days // 61)
    # The first call is made as the unknown mailbox: Graph refuses it, the batch is asked again.
    assert calls == batches * chunks + 1
    assert isinstance(answer.errors[missing.id], NotFound)
    assert answer.of(rooms[22].id) == (Interval(datetime(2027, 5, 1, 10, tzinfo=UTC),
                                               datetime(2027, 5, 1, 11, tzinfo=UTC)),)
    assert answer.of(rooms[3].id) == ()
    assert answer.of(rooms[7].id) == (Interval(datetime(2027, 3, 1, 23, tzinfo=UTC),
                                              window.end),)
    assert all(answer.of(r.id) == () for r in rooms if r not in (rooms[7], rooms[22]))
    assert window.end - window.start > timedelta(days=62)


def test_the_rooms_own_copy_of_the_meeting_is_reported_as_the_bookings(
    fake: GraphFake, account: MicrosoftAccount, connector: MicrosoftConnector,
    mailbox: CalendarRef,
) -> None:
    room = CalendarRef(f"elbe-{mailbox.id}")
    fake.add_room(room.id, name="Elbe", answer=RoomAnswer.ACCEPT, delay=0.05)
    written = connector.create_event(mailbox, draft("bk-copy", room.id))
    eventually(lambda: connector.read_event(mailbox, "bk-copy", source=written.source),
               AttendeeAnswer.ACCEPTED, room.id)
    window = Interval(START - timedelta(days=1), START + timedelta(days=1))
    walk_in = fake.create(room.id, {"subject": "walk-in", "showAs": "busy",
                                    "start": {"dateTime": "2027-03-10T16:00:00",
                                              "timeZone": "UTC"},
                                    "end": {"dateTime": "2027-03-10T17:00:00",
                                            "timeZone": "UTC"}})

    # Known from the write, and asked of the organizer's mailbox by a fresh process.
    for reader in (connector, MicrosoftConnector(account)):
        listing = reader.list_window(room, window)
        by_booking = {e.booking_id: e.uid for events in listing.objects.values()
                      for e in events}
        assert by_booking == {"bk-copy": written.uid, None: walk_in["iCalUId"]}
