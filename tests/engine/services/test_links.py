"""One-time links end to end on Radicale: tokens stored only as digests, one
booking per link also when many use it at once, expiry, revocation,
prefilled attendees, and a failed booking giving its link back.  Each test
looks at calpool's database and, where a booking is written, at the server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.memory import MemoryProvider
from engine.core.model import Attendee, Booking, BookingStatus
from engine.core.slots import SlotRejection
from engine.services.booking import BookingOutcome, UnknownEventType
from engine.services.links import (
    InvalidLink,
    LinkError,
    LinkExpired,
    LinkNotFound,
    LinkService,
    LinkUsed,
    token_digest,
)
from engine.store import Store, migrate
from tests.engine.services.booking_harness import ANN, NOW, SLOT, Site, make_site, uid_of
from tests.engine.services.memory_calendars import plain_event, put_event
from tests.support.postgres import PostgresServer, postgres_server  # noqa: F401 - fixture

WAIT = timedelta(seconds=20)
BEA = Attendee("Bea Prefilled", "bea@example.com")


def links_of(site: Site) -> LinkService:
    return LinkService(site.store, site.bookings, site.event_types,
                       default_expiry=timedelta(days=7))


class Refused(Exception):
    """The link was fine, the booking attempt was refused (no booking)."""

    def __init__(self, outcome: BookingOutcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


def book(links: LinkService, token: str, start=SLOT,  # type: ignore[no-untyped-def]
         attendee: Attendee | None = ANN, now=NOW) -> Booking:
    outcome = links.book(token, start, attendee, "", now, confirm_within=WAIT)
    if outcome.booking is None:
        raise Refused(outcome)
    return outcome.booking


def race(requests: list[Callable[[], Booking]]) -> tuple[list[Booking], list[Exception]]:
    """Run ``requests`` at once (released together by a barrier)."""
    barrier = threading.Barrier(len(requests))

    def attempt(request: Callable[[], Booking]) -> Booking | Exception:
        barrier.wait()
        try:
            return request()
        except (LinkError, Refused) as refused:
            return refused

    with ThreadPoolExecutor(len(requests)) as pool:
        outcomes = list(pool.map(attempt, requests))
    won = [o for o in outcomes if isinstance(o, Booking)]
    return won, [o for o in outcomes if isinstance(o, Exception)]


def test_a_token_is_random_url_safe_and_only_its_digest_is_stored(
    provider: MemoryProvider, store: Store, tmp_path: Path
) -> None:
    links = links_of(make_site(provider, store))

    issued = [links.create("consult", NOW) for _ in range(20)]

    tokens = {link.token for link in issued}
    assert len(tokens) == 20
    for link in issued:
        assert len(link.token) >= 43  # 32 bytes: 256 bits, base64url
        assert set(link.token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert link.id == token_digest(link.token) != link.token
        assert link.link.expires_at == NOW + timedelta(days=7)
    # The whole database file, read raw: no table or index holds a token.
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("calpool.db*"))  # with the WAL
    assert not any(token.encode() in raw for token in tokens)
    assert all(link.id.encode() in raw for link in issued)


def test_twenty_uses_of_one_link_at_once_book_exactly_once(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    links = links_of(site)
    token = links.create("consult", NOW).token

    won, lost = race([lambda: book(links, token)] * 20)

    assert len(won) == 1 and len(lost) == 19
    assert all(isinstance(refused, LinkUsed) for refused in lost), lost
    assert won[0].status is BookingStatus.CONFIRMED
    with store.reader() as uow:
        assert [b.id for b in uow.bookings.find()] == [won[0].id]
        link = uow.links.get(token_digest(token))
    assert link is not None and link.booking_id == won[0].id and link.used_at == NOW
    assert site.uids("alice") == [uid_of(won[0].id)]
    assert site.uids(won[0].rooms["rooms"]) == [uid_of(won[0].id)]
    with pytest.raises(LinkUsed):
        book(links, token, start=SLOT + timedelta(hours=2))


def test_twenty_uses_at_different_starts_book_once_on_postgresql(
    provider: MemoryProvider, postgres_server: PostgresServer  # noqa: F811 - the imported fixture
) -> None:
    """Different starts do not collide on a reservation, so only the link's
    own conditional update can stop 19 of them, with concurrent
    transactions (PostgreSQL does not serialize writers as SQLite does)."""
    url = postgres_server.create_database()
    migrate.upgrade(url)
    with Store.open(url) as store:
        site = make_site(provider, store)
        links = links_of(site)
        token = links.create("consult", NOW).token
        starts = [SLOT + timedelta(minutes=30 * n) for n in range(20)]

        won, lost = race([lambda start=start: book(links, token, start=start)  # type: ignore[misc]
                          for start in starts])

        assert len(won) == 1 and len(lost) == 19
        assert all(isinstance(refused, LinkUsed) for refused in lost), lost
        with store.reader() as uow:
            assert [b.id for b in uow.bookings.find()] == [won[0].id]
        assert site.uids("alice") == [uid_of(won[0].id)]


def test_an_expired_link_neither_shows_nor_books(provider: MemoryProvider, store: Store) -> None:
    site = make_site(provider, store)
    links = links_of(site)
    issued = links.create("consult", NOW, expires_in=timedelta(hours=1))
    later = NOW + timedelta(hours=1)

    assert links.open(issued.token, later - timedelta(seconds=1)).event_type == "consult"
    with pytest.raises(LinkExpired, match="expired"):
        links.open(issued.token, later)
    with pytest.raises(LinkExpired):
        book(links, issued.token, now=later)
    assert links.unused(later) == []
    with store.reader() as uow:
        assert uow.bookings.find() == []
    assert site.uids("alice") == []


def test_revoke_by_token_or_id_is_idempotent_and_leaves_used_links_alone(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    links = links_of(site)
    first, second, third = (links.create("consult", NOW) for _ in range(3))

    revoked = links.revoke(first.token, NOW)
    assert revoked.revoked_at == NOW
    assert links.revoke(first.token, NOW + timedelta(minutes=5)).revoked_at == NOW
    assert links.revoke(second.id, NOW).revoked_at == NOW  # the id from the listing
    assert [link.token_sha256 for link in links.unused(NOW)] == [third.id]
    with pytest.raises(LinkExpired, match="revoked"):
        book(links, first.token)

    booking = book(links, third.token)
    with pytest.raises(LinkUsed):
        links.revoke(third.token, NOW)
    with pytest.raises(LinkNotFound):
        links.revoke("no-such-token", NOW)
    assert site.bookings.get(booking.id).status is BookingStatus.CONFIRMED


def test_an_unknown_token_is_not_found_and_the_answer_names_nothing(
    provider: MemoryProvider, store: Store
) -> None:
    links = links_of(make_site(provider, store))
    guess = "x" * 43

    with pytest.raises(LinkNotFound) as found:
        book(links, guess)
    assert guess not in str(found.value)
    with pytest.raises(LinkNotFound):
        links.open(guess, NOW)


def test_a_failed_booking_gives_the_link_back(provider: MemoryProvider, store: Store) -> None:
    """Both rooms turn busy on the provider after the last sync: the
    booking fails in the outbox, and the link books again afterwards."""
    site = make_site(provider, store)
    site.sync_all()
    links = links_of(site)
    token = links.create("consult", NOW).token
    for room in ("room-a", "room-b"):
        put_event(provider, site.ids[room], f"taken-{room}",
                  plain_event(f"taken-{room}", SLOT, SLOT + timedelta(hours=1)))

    failed = book(links, token)

    assert failed.status is BookingStatus.FAILED
    link = links.open(token, NOW)  # usable again
    assert (link.used_at, link.booking_id) == (None, None)
    later = SLOT + timedelta(hours=2)
    booking = book(links, token, start=later)
    assert booking.status is BookingStatus.CONFIRMED
    with store.reader() as uow:
        spent = uow.links.get(token_digest(token))
    assert spent is not None and spent.booking_id == booking.id
    assert site.uids("alice") == [uid_of(booking.id)]


def test_a_refused_slot_leaves_the_link_usable(provider: MemoryProvider, store: Store) -> None:
    site = make_site(provider, store)
    links = links_of(site)
    token = links.create("consult", NOW).token
    site.bookings.book("consult", SLOT, Attendee("Someone Else", "else@example.com"), "", NOW)

    with pytest.raises(Refused) as refused:
        book(links, token)

    assert refused.value.outcome.reason is SlotRejection.OWNER_BUSY
    assert links.open(token, NOW).used_at is None
    assert book(links, token, start=SLOT + timedelta(hours=1)).status is BookingStatus.CONFIRMED


def test_a_prefilled_link_books_its_attendee_and_refuses_another(
    provider: MemoryProvider, store: Store
) -> None:
    site = make_site(provider, store)
    links = links_of(site)
    token = links.create("consult", NOW, attendee=BEA).token

    with pytest.raises(InvalidLink) as refused:
        book(links, token, attendee=ANN)
    assert refused.value.field == "attendee"
    assert links.open(token, NOW).used_at is None

    booking = book(links, token, attendee=None)

    assert booking.attendee == BEA
    [event] = site.events("alice")
    assert "Bea Prefilled" in event["SUMMARY"] and "bea@example.com" in event["attendees"]


def test_a_link_without_attendee_needs_one(provider: MemoryProvider, store: Store) -> None:
    links = links_of(make_site(provider, store))
    token = links.create("consult", NOW).token

    with pytest.raises(InvalidLink) as refused:
        book(links, token, attendee=None)
    assert refused.value.field == "attendee"


@pytest.mark.parametrize(("options", "field"), [
    ({"expires_in": timedelta(0)}, "expires_in"),
    ({"expires_in": timedelta(days=999_999_999)}, "expires_in"),
    ({"attendee": Attendee("", "bea@example.com")}, "attendee.name"),
    ({"attendee": Attendee("Bea", "not an address")}, "attendee.email"),
])
def test_malformed_links_are_refused_naming_the_field(
    provider: MemoryProvider, store: Store, options: dict[str, object], field: str
) -> None:
    links = links_of(make_site(provider, store))

    with pytest.raises(InvalidLink) as refused:
        links.create("consult", NOW, **options)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert links.unused(NOW) == []
    with pytest.raises(UnknownEventType):
        links.create("nope", NOW)
