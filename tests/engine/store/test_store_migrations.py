"""Migrations: from empty, from the previous revision with data, down again;
a process refuses a database whose schema is not its own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from engine.core.model import Interval
from engine.store import SchemaNotCurrent, Store, StoreError, migrate
from engine.store.database import create_store_engine, redacted
from engine.store.schema import (
    booking_history,
    booking_rooms,
    bookings,
    busy_events,
    calendars,
    metadata,
)
from tests.engine.store.samples import WINDOW, at, changes, event, make_booking

MANAGE_TABLES = {"manage_tokens", "deliveries"}
SYNC_TABLES = {"calendars", "sync_leases", "busy_events", "push_channels"}
# Revision 0009 replaces sync_leases by leases.
LEASE_TABLES = {"leases", "config_fingerprints", "processes"}
# Revision 0010: the attendee's emails.
EMAIL_TABLES = {"email_deliveries"}
HEAD_SYNC_TABLES = SYNC_TABLES - {"sync_leases"}
ASSIGNMENT_TABLES = {"room_assignments", "booking_events", "webhook_deliveries",
                     "sync_requests", "push_messages"}
BOOKING_TABLES = {
    "bookings",
    "booking_with",
    "booking_rooms",
    "booking_history",
    "reservations",
    "outbox",
    "links",
    "idempotency_keys",
}


def tables(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_revisions_are_the_documented_ones() -> None:
    assert migrate.revisions() == ["0001", "0002", "0003", "0004", "0005", "0006", "0007",
                                   "0008", "0009", "0010", "0011"]
    assert migrate.head_revision() == "0011"


def test_upgrade_from_empty_builds_the_whole_schema(empty_url: str) -> None:
    assert migrate.current_revision(empty_url) is None
    migrate.upgrade(empty_url)
    assert migrate.current_revision(empty_url) == "0011"
    assert tables(empty_url) == (HEAD_SYNC_TABLES | BOOKING_TABLES | ASSIGNMENT_TABLES
                                 | MANAGE_TABLES | LEASE_TABLES | EMAIL_TABLES)


def test_migrated_schema_matches_the_metadata_the_code_queries(db_url: str) -> None:
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_from_previous_revision_keeps_the_sync_cache(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0001")
    assert tables(empty_url) == SYNC_TABLES
    # Written as revision 0001's code wrote it (today's code knows later columns).
    engine = create_store_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(calendars.insert().values(
            key="alice", cursor="c1", window_start=WINDOW.start, window_end=WINDOW.end,
            last_success_at=at(0), last_attempt_at=at(0), version=1))
        calendar_id = connection.execute(select(calendars.c.id)).scalar_one()
        connection.execute(busy_events.insert().values(
            calendar_id=calendar_id, source="a", instance="", uid="uid-a", start_at=at(1),
            end_at=at(2), busy=True, etag=""))
    engine.dispose()

    migrate.upgrade(empty_url)

    with Store.open(empty_url) as store, store.unit_of_work() as uow:
        state = uow.calendars.sync_state("alice")
        assert state is not None and state.cursor == "c1"
        assert [e.source for e in uow.events.in_window("alice", WINDOW)] == ["a"]
        uow.bookings.reserve(make_booking("bk-1", 1, 2, owner="alice"))
        uow.commit()
        assert uow.bookings.active_touching(Interval(at(0), at(3)))[0].id == "bk-1"


def test_downgrade_to_previous_keeps_sync_cache_and_to_base_empties(db_url: str) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.events.apply_changes("alice", changes("c1", event("a", 1, 2)), WINDOW, at(0))
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.commit()

    migrate.downgrade(db_url, "0001")
    assert migrate.current_revision(db_url) == "0001"
    assert tables(db_url) == SYNC_TABLES
    with Store.open(db_url, check_schema=False) as store, store.reader() as uow:
        assert uow.events.count("alice") == 1

    migrate.downgrade(db_url, "base")
    assert tables(db_url) == set()
    migrate.upgrade(db_url)
    assert tables(db_url) == (HEAD_SYNC_TABLES | BOOKING_TABLES | ASSIGNMENT_TABLES
                              | MANAGE_TABLES | LEASE_TABLES | EMAIL_TABLES)


def test_upgrade_to_0009_drops_sync_leases_and_down_again_restores_them(db_url: str) -> None:
    with Store.open(db_url) as store, store.unit_of_work() as uow:
        uow.events.apply_changes("alice", changes("c1", event("a", 1, 2)), WINDOW, at(0))
        assert uow.leases.try_acquire("sync:alice", "one", timedelta(minutes=2), at(0))
        uow.commit()
    migrate.downgrade(db_url, "0009")
    assert not EMAIL_TABLES & tables(db_url)
    migrate.downgrade(db_url, "0008")
    assert "sync_leases" in tables(db_url) and not LEASE_TABLES & tables(db_url)
    migrate.upgrade(db_url)
    with Store.open(db_url) as store, store.reader() as uow:
        assert uow.events.count("alice") == 1
        assert uow.leases.held(at(0)) == []  # a lease in flight is dropped; re-taken later


def test_unmigrated_database_is_refused_naming_the_command(empty_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="run `calpool db upgrade`") as refused:
        Store.open(empty_url)
    assert (refused.value.current, refused.value.expected) == (None, "0011")
    assert "\n" not in str(refused.value)


def test_database_behind_is_refused_naming_the_command(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0001")
    with pytest.raises(
        SchemaNotCurrent,
        match=r"revision 0001 .* needs 0011; run `calpool db upgrade`",
    ):
        Store.open(empty_url)


def test_database_ahead_is_refused(db_url: str) -> None:
    engine = create_store_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaNotCurrent, match="newer than this calpool") as refused:
        Store.open(db_url)
    assert "calpool db upgrade" in str(refused.value)
    assert refused.value.current == "0099"


def test_password_never_appears_in_messages() -> None:
    assert redacted("postgresql+psycopg://calpool:s3cret@127.0.0.1:1/db") == (
        "postgresql+psycopg://calpool:***@127.0.0.1:1/db"
    )


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_has_the_exclusion_constraint(db_url: str) -> None:
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as connection:
            kinds = connection.execute(
                text(
                    "SELECT contype FROM pg_constraint WHERE conname = 'ex_reservations_no_overlap'"
                )
            ).scalars()
            assert list(kinds) == ["x"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_runs_in_wal_with_foreign_keys(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "mysql://x@localhost/db", "postgresql+asyncpg://x@h/db"],
)
def test_unsupported_urls_are_refused_in_one_sentence(url: str) -> None:
    with pytest.raises(StoreError) as refused:
        Store.open(url)
    assert "\n" not in str(refused.value)


def test_unreachable_database_is_one_sentence(tmp_path: Path) -> None:
    missing_folder = tmp_path / "no" / "such" / "folder" / "calpool.db"
    with pytest.raises(StoreError, match="cannot use the database") as refused:
        Store.open(f"sqlite:///{missing_folder}")
    assert "\n" not in str(refused.value)
    with pytest.raises(StoreError, match="cannot use the database"):
        migrate.upgrade("postgresql+psycopg://calpool:pw@/db?host=/nonexistent-socket-dir")


def test_upgrade_to_0003_logs_the_rooms_existing_bookings_hold(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0002")
    # Written as revision 0002's code wrote them: no room_assignments yet.
    engine = create_store_engine(empty_url)
    with engine.begin() as connection:
        for booking_id, room, booked_at, status in [("kept", "room-a", at(-5), "confirmed"),
                                                    ("gone", "room-b", at(-4), "cancelled")]:
            connection.execute(bookings.insert(), {
                "id": booking_id, "event_type": "consultation", "start_at": at(1),
                "end_at": at(2), "owner": "alice", "status": status, "booked_at": booked_at})
            connection.execute(booking_rooms.insert(), {
                "booking_id": booking_id, "pool": "berlin", "calendar_key": room})
            connection.execute(booking_history.insert(), {
                "booking_id": booking_id, "at": booked_at, "status": "pending"})
        connection.execute(booking_history.insert(), {
            "booking_id": "gone", "at": at(-1), "status": "cancelled"})
    engine.dispose()

    migrate.upgrade(empty_url)

    with Store.open(empty_url) as store, store.reader() as uow:
        stints = uow.bookings.stints("berlin", Interval(at(-10), at(10)))
    assert [(s.booking_id, s.room, s.assigned_at, s.how.value, s.ended_at,
             s.ended_how.value if s.ended_how else None) for s in stints] == [
        ("kept", "room-a", at(-5), "booked", None, None),
        ("gone", "room-b", at(-4), "booked", at(-1), "cancelled"),
    ]
