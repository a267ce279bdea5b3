"""What the memory connector stores for a booking, beyond the contract:
participants (the seam for rooms that answer), idempotency by content,
UID uniqueness, unconditional updates, refused event values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from connectors.memory import Answer, MemoryEvent, Occurrence, Role, booking_object_id, booking_uid
from engine.errors import Conflict, NotFound
from engine.ports import EventDraft
from tests.connectors.memory.memory_fixtures import CAL, booking, connected, meeting


def test_booking_event_carries_its_participants_and_booking() -> None:
    provider, connector = connected()
    written = connector.create_event(CAL, booking())

    stored = provider.get(CAL.id, written.source)
    assert stored is not None and stored.etag == written.etag
    event = stored.event
    assert (event.uid, event.booking_id, event.summary) == (booking_uid("b1"), "b1", "Consultation")
    assert event.organizer is not None and event.organizer.role is Role.ORGANIZER
    assert [(p.email, p.role, p.answer) for p in event.attendees] == [
        ("carol@example.net", Role.REQUIRED, Answer.NEEDS_ACTION),
        ("spree@rooms.example.org", Role.RESOURCE, Answer.ACCEPTED),
    ]
    assert [r.name for r in event.rooms] == ["Spree"]


def test_retry_with_only_a_description_changed_returns_the_first_write() -> None:
    """Same comparison as CalDAV: booking, times and title decide."""
    _, connector = connected()
    first = connector.create_event(CAL, booking())
    again = connector.create_event(CAL, replace(booking(), description="edited meanwhile"))
    assert again == first


def test_create_where_another_object_holds_the_uid_conflicts() -> None:
    provider, connector = connected()
    squatter = meeting("squatter")
    provider.put(CAL.id, "elsewhere", replace(squatter, uid=booking_uid("b1")))
    with pytest.raises(Conflict) as caught:
        connector.create_event(CAL, booking())
    assert caught.value.href == booking_object_id("b1")


def test_create_over_a_foreign_object_at_the_booking_id_conflicts() -> None:
    provider, connector = connected()
    provider.put(CAL.id, booking_object_id("b1"), meeting("someone-else"))
    with pytest.raises(Conflict) as caught:
        connector.create_event(CAL, booking())
    assert caught.value.actual == provider.objects(CAL.id)[0].etag


def test_update_without_an_etag_overwrites_any_version() -> None:
    provider, connector = connected()
    connector.create_event(CAL, booking())
    provider.put(CAL.id, booking_object_id("b1"), meeting(booking_uid("b1")))  # edited by hand

    written = connector.update_event(CAL, booking(hour=11))

    stored = provider.get(CAL.id, written.source)
    assert stored is not None and stored.event.start == datetime(2027, 3, 10, 11, tzinfo=UTC)


def test_update_in_a_missing_calendar_is_not_found() -> None:
    _, connector = connected()
    with pytest.raises(NotFound):
        connector.update_event(CAL.__class__("nowhere", "UTC"), booking())


def test_deleted_booking_can_be_written_again_with_a_new_etag() -> None:
    _, connector = connected()
    first = connector.create_event(CAL, booking())
    connector.delete_event(CAL, "b1")
    second = connector.create_event(CAL, booking())
    assert second.source == first.source and second.etag != first.etag


def test_untame_booking_ids_become_digests() -> None:
    assert booking_object_id("b-1.x_2") == "calpool-b-1.x_2"
    odd = booking_object_id("a/b c")
    assert odd.startswith("calpool-") and len(odd) == len("calpool-") + 40
    assert booking_object_id(".hidden") != "calpool-.hidden"


def test_every_object_version_gets_an_etag_of_its_own() -> None:
    provider, connector = connected()
    etags = {connector.create_event(CAL, booking(f"b{i}")).etag for i in range(5)}
    etags.add(provider.put(CAL.id, "x", meeting("x")).etag)
    assert len(etags) == 6


@pytest.mark.parametrize(
    "build",
    [
        lambda: MemoryEvent(uid="", start=date(2027, 3, 1), end=date(2027, 3, 2)),
        lambda: MemoryEvent(uid="u", start=datetime(2027, 3, 1, 9), end=datetime(2027, 3, 1, 10)),
        lambda: MemoryEvent(uid="u", start=date(2027, 3, 1), end=datetime(2027, 3, 2, tzinfo=UTC)),
        lambda: MemoryEvent(uid="u", start=date(2027, 3, 2), end=date(2027, 3, 1)),
        lambda: MemoryEvent(
            uid="u",
            start=date(2027, 3, 1),
            end=date(2027, 3, 2),
            occurrences=(
                Occurrence(
                    original_start=date(2027, 3, 1), start=date(2027, 3, 1), end=date(2027, 3, 2)
                ),
                Occurrence(
                    original_start=date(2027, 3, 1), start=date(2027, 3, 3), end=date(2027, 3, 4)
                ),
            ),
        ),
    ],
    ids=["no-uid", "naive", "mixed", "backwards", "duplicate-occurrence"],
)
def test_event_values_refuse_what_no_provider_could_hold(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_draft_booking_id_drives_the_object_id() -> None:
    draft = EventDraft(
        booking_id="abc",
        title="t",
        start=datetime(2027, 3, 2, 9, tzinfo=UTC),
        end=datetime(2027, 3, 2, 10, tzinfo=UTC),
    )
    _, connector = connected()
    assert connector.create_event(CAL, draft).source == "calpool-abc"
