"""One-time links, idempotency keys and push channels."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine.core.model import Attendee, BookingStatus
from engine.store import IdempotencyOutcome, IdempotencyState, Link, PushChannel, Store
from tests.engine.store.samples import at, make_booking

TOKEN = "a" * 64


def link(token: str = TOKEN, *, expires: float = 48, attendee: Attendee | None = None) -> Link:
    return Link(
        token_sha256=token,
        event_type="consultation",
        created_at=at(0),
        expires_at=at(expires),
        attendee=attendee,
    )


def test_link_reads_back_and_is_used_once(store: Store) -> None:
    prefilled = Attendee(name="Kim", email="kim@example.org")
    with store.unit_of_work() as uow:
        uow.links.create(link(attendee=prefilled))
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.bookings.reserve(make_booking("bk-2", 3, 4))
        assert uow.links.get(TOKEN) == link(attendee=prefilled)
        assert uow.links.use(TOKEN, "bk-1", at(1))
        assert not uow.links.use(TOKEN, "bk-2", at(1))
        uow.commit()
        used = uow.links.get(TOKEN)
    assert used is not None and (used.used_at, used.booking_id) == (at(1), "bk-1")
    assert not used.usable(at(1))


def test_failed_booking_gives_its_link_back(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.links.create(link())
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.links.use(TOKEN, "bk-1", at(1))
        uow.bookings.set_status("bk-1", BookingStatus.FAILED, at(2))
        assert uow.links.give_back("bk-1")
        uow.commit()
        restored = uow.links.get(TOKEN)
    assert restored is not None and restored.usable(at(3))


def test_expired_and_revoked_links_cannot_be_used(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.links.create(link("e" * 64, expires=1))
        uow.links.create(link("r" * 64))
        uow.links.create(link("k" * 64))
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        assert uow.links.revoke("r" * 64, at(0.5))
        assert not uow.links.revoke("r" * 64, at(0.6))
        assert not uow.links.use("e" * 64, "bk-1", at(1))
        assert not uow.links.use("r" * 64, "bk-1", at(1))
        assert not uow.links.use("nope", "bk-1", at(1))
        assert [each.token_sha256 for each in uow.links.unused(at(0.9))] == ["e" * 64, "k" * 64]
        assert uow.links.purge_expired_before(at(2)) == 1


def test_only_the_token_hash_is_stored(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.links.create(link())
        uow.commit()
        columns = uow._require().execute(text("SELECT * FROM links")).keys()
    assert "token" not in columns and "token_sha256" in columns


def test_idempotency_key_replays_the_first_answer(store: Store) -> None:
    keys = None
    with store.unit_of_work() as uow:
        keys = uow.idempotency
        assert keys.begin("website", "k1", "h1", at(0)).state is IdempotencyState.NEW
        assert keys.begin("website", "k1", "h1", at(0)).state is IdempotencyState.IN_PROGRESS
        assert keys.begin("website", "k1", "h2", at(0)).state is IdempotencyState.MISMATCH
        assert (
            keys.begin("desk", "k1", "h2", at(0)).state is IdempotencyState.NEW
        )  # scoped by token
        keys.finish("website", "k1", 201, '{"id": "bk-1"}', at(1))
        uow.commit()
        assert keys.begin("website", "k1", "h1", at(2)) == IdempotencyOutcome(
            IdempotencyState.REPLAY, 201, '{"id": "bk-1"}'
        )


def test_abandoned_key_can_be_claimed_again_and_old_keys_expire(store: Store) -> None:
    with store.unit_of_work() as uow:
        keys = uow.idempotency
        keys.begin("website", "k1", "h1", at(0))
        keys.abandon("website", "k1")
        assert keys.begin("website", "k1", "h1", at(1)).state is IdempotencyState.NEW
        keys.begin("website", "k2", "h1", at(30))
        assert keys.purge_created_before(at(24)) == 1
        assert keys.begin("website", "k1", "h9", at(31)).state is IdempotencyState.NEW


def test_a_key_whose_claiming_process_went_silent_is_taken_over(store: Store) -> None:
    """A claim is taken over early only when the process that made it is
    known and has gone silent in ``processes``, and the claim is older than
    a request runs; otherwise only the time rule applies."""
    with store.unit_of_work() as uow:
        for holder in ("killed", "alive"):
            uow.processes.record(holder=holder, host="h", fingerprint="f", calendars=[],
                                 now=at(0))
        assert uow.processes.touch("alive", at(2))
        keys = uow.idempotency
        for key, holder in (("by-killed", "killed"), ("by-alive", "alive"),
                            ("by-no-one", None), ("by-unknown", "never-recorded"),
                            ("held-by-killed", "killed"), ("young", "killed")):
            claimed = at(0.5) if key == "young" else at(1)
            assert keys.begin("web", key, "h1", claimed, holder=holder).state is (
                IdempotencyState.NEW)
        keys.hold("web", "held-by-killed", '{"id": "bk-1"}')
        uow.commit()

        def take(key: str) -> IdempotencyOutcome | None:
            # At 2 h: the time rule would wait until 3 h; "killed" was last
            # seen at 0 h, before 1.5 h; a request runs at most 15 minutes.
            return keys.take_over("web", key, started_before=at(-1), held_status=202,
                                  now=at(2), holder="heir", claimer_silent_since=at(1.5),
                                  claimer_started_before=at(2 - 0.25))

        assert take("by-killed") == IdempotencyOutcome(IdempotencyState.NEW)
        assert take("held-by-killed") == IdempotencyOutcome(
            IdempotencyState.REPLAY, 202, '{"id": "bk-1"}')
        assert take("by-alive") is None
        assert take("by-no-one") is None
        assert take("by-unknown") is None  # no row: it never said it runs
        # Renewed for the heir, which is alive: not taken a second time.
        uow.processes.record(holder="heir", host="h", fingerprint="f", calendars=[], now=at(2))
        assert take("by-killed") is None
        assert keys.take_over("web", "young", started_before=at(-1), held_status=202,
                              now=at(0.6), holder="heir", claimer_silent_since=at(0.55),
                              claimer_started_before=at(0.6 - 0.25)) is None  # too young
        uow.commit()


def test_push_channels_are_saved_renewed_and_found_by_expiry(store: Store) -> None:
    first = PushChannel(
        id="ch-1",
        calendar_id="alice@example.org",
        calendar="alice",
        resource_id="res-1",
        token_sha256="b" * 64,
        expires_at=at(24),
        created_at=at(0),
    )
    other = PushChannel(
        id="ch-2",
        calendar_id="room-a@example.org",
        calendar="room-a",
        resource_id="",
        token_sha256="c" * 64,
        expires_at=at(72),
        created_at=at(0),
    )
    renewed = PushChannel(
        id="ch-1",
        calendar_id="alice@example.org",
        calendar="alice",
        resource_id="res-1",
        token_sha256="b" * 64,
        expires_at=at(96),
        created_at=at(20),
    )
    with store.unit_of_work() as uow:
        uow.channels.save(first)
        uow.channels.save(other)
        uow.commit()
        assert uow.channels.get("ch-1") == first
        assert uow.channels.expiring_before(at(48)) == [first]
        uow.channels.save(renewed)
        assert uow.channels.for_calendar("alice") == [renewed]
        assert [c.id for c in uow.channels.expiring_before(at(100))] == ["ch-2", "ch-1"]
        assert uow.channels.remove("ch-2")
        assert uow.channels.get("ch-2") is None


@pytest.mark.parametrize("missing", ["nope"])
def test_unknown_channel_is_none(store: Store, missing: str) -> None:
    with store.reader() as uow:
        assert uow.channels.get(missing) is None
        assert uow.links.get(missing) is None
