"""Manage tokens: stored by digest, one booking each, gone with the booking."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from engine.store import Store
from tests.engine.store.samples import at, make_booking

DIGEST = "b" * 64


def test_a_token_names_its_booking_by_digest(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.manage_tokens.create(DIGEST, "bk-1", at(0))
        uow.commit()
    with store.reader() as uow:
        assert uow.manage_tokens.booking_of(DIGEST) == "bk-1"
        assert uow.manage_tokens.booking_of("c" * 64) is None


def test_a_token_needs_an_existing_booking(store: Store) -> None:
    with pytest.raises(IntegrityError), store.unit_of_work() as uow:
        uow.manage_tokens.create(DIGEST, "bk-missing", at(0))
        uow.commit()


def test_purging_a_booking_removes_its_token(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.manage_tokens.create(DIGEST, "bk-1", at(0))
        uow.commit()
        assert uow.bookings.purge_ended_before(at(3)) == 1
        uow.commit()
        assert uow.manage_tokens.booking_of(DIGEST) is None
