"""The tests' config builder (``tests/support/config_builder.py``): what it
renders is read by calpool's own ``load_config`` into the Config it
described, and what calpool refuses is refused by calpool, not the builder."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.config.settings import CaldavAccount, GoogleAccount, SecretRef
from engine.core.model import AssignmentMethod, CalendarKind, LocalRange
from tests.daemon.conftest import BASE
from tests.support.config_builder import SiteConfig


def small_site() -> SiteConfig:
    """One person, two rooms in a pool, one event type: valid."""
    return (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin")
        .caldav_account("dav", url="https://dav.example/dav/")
        .calendars({"alice": "alice/", "room-a": "rooms/a/", "room-b": "rooms/b/"},
                   persons={"alice"})
        .pool("rooms", members=["room-a", "room-b"])
        .event_type("consult", title="Consultation", duration="30m", owner="alice",
                    pools=["rooms"])
    )


def test_every_part_reaches_the_config_calpool_loads(tmp_path: Path) -> None:
    built = (
        small_site()
        .daemon(log_format="json", outbox_claim_hold="3s")
        .http(listen="127.0.0.1:9000", public_url="https://book.example.com",
              confirm_within="1s")
        .sync(window_future="120d", stale_after="10m", push=False)
        .links(default_expiry="3d")
        .retention(bookings="30d", idempotency_keys="12h")
        .api_token("desk", token_env="DESK_TOKEN", scopes=["slots", "book"])
        .api_token("ops", sha256="ab" * 32, scopes=["admin"])
        .caldav_account("dav", url="https://dav.example/dav/", username="calpool",
                        password_env="DAV_PASSWORD", sync_method="etag")
        .account("google", provider="google", service_account_env="GOOGLE_KEY",
                 subject="admin@example.com")
        .calendar("bob", account="google", id="bob@example.com", kind="person",
                  timezone="America/New_York", working_hours={"mon-fri": "09:00-12:00"},
                  overrides={"2027-12-24": ""}, subject="bob@example.com")
        .calendar("room-a", name="Room A", capacity=4)
        .pool("rooms", assignment="priority", reporting_cycle="week")
        .event_type("consult", step="15m", with_=["bob"], min_notice="2h", horizon="100d",
                    buffer_after="5m", max_per_day=3, live_recheck=True,
                    description="Booked. {notes}")
    )

    config = load_config(built.write(tmp_path))

    assert config.path == (tmp_path / "calpool.toml").resolve()
    assert config.daemon.timezone == "Europe/Berlin" and config.daemon.log_format == "json"
    assert config.daemon.outbox_claim_hold == timedelta(seconds=3)
    assert (config.http.port, config.http.public_url) == (9000, "https://book.example.com")
    assert config.http.confirm_within == timedelta(seconds=1)
    assert config.sync.window_future == timedelta(days=120) and config.sync.push is False
    assert config.links.default_expiry == timedelta(days=3)
    assert config.retention.idempotency_keys == timedelta(hours=12)
    assert [(t.name, sorted(t.scopes), t.secret, t.sha256) for t in config.api_tokens] == [
        ("desk", ["book", "slots"], SecretRef(key_path="api.tokens[0].token_env",
                                               env="DESK_TOKEN"), None),
        ("ops", ["admin"], None, "ab" * 32),
    ]
    dav = config.accounts["dav"]
    assert isinstance(dav, CaldavAccount)
    assert (dav.username, dav.sync_method) == ("calpool", "etag")
    assert dav.password is not None and dav.password.env == "DAV_PASSWORD"
    google = config.accounts["google"]
    assert isinstance(google, GoogleAccount) and google.subject == "admin@example.com"
    assert list(config.calendars) == ["alice", "room-a", "room-b", "bob"]
    assert config.calendars["alice"].kind is CalendarKind.PERSON
    assert config.calendars["alice"].timezone == "Europe/Berlin"  # the daemon's
    assert config.calendars["room-b"].kind is CalendarKind.ROOM
    assert (config.calendars["room-a"].name, config.calendars["room-a"].capacity) == (
        "Room A", 4)
    bob = config.calendars["bob"]
    assert bob.timezone == "America/New_York" and bob.working_hours is not None
    assert bob.working_hours.ranges_on(date(2027, 12, 23)) == (LocalRange(time(9), time(12)),)
    assert bob.working_hours.ranges_on(date(2027, 12, 24)) == ()
    assert config.sources["bob"].subject == "bob@example.com"
    assert config.sources["room-a"].external_id == "rooms/a/"
    pool = config.pools["rooms"]
    assert pool.members == ("room-a", "room-b")
    assert pool.assignment is AssignmentMethod.PRIORITY
    consult = config.event_types["consult"]
    assert (consult.owner, consult.with_, consult.pools) == ("alice", ("bob",), ("rooms",))
    assert (consult.duration, consult.step) == (timedelta(minutes=30), timedelta(minutes=15))
    assert (consult.min_notice, consult.horizon) == (timedelta(hours=2), timedelta(days=100))
    assert (consult.buffer_after, consult.max_per_day, consult.live_recheck) == (
        timedelta(minutes=5), 3, True)
    assert consult.description == "Booked. {notes}"


def test_keys_left_out_take_calpools_defaults(tmp_path: Path) -> None:
    config = load_config(small_site().write(tmp_path))

    consult = config.event_types["consult"]
    assert consult.step == consult.duration == timedelta(minutes=30)
    assert consult.horizon == timedelta(days=60) and consult.with_ == ()
    assert config.sync.window_future == timedelta(days=90)
    assert config.http.public_url == "http://127.0.0.1:8740"
    assert config.api_tokens == ()


def test_migrated_writes_loads_and_migrates_the_database(tmp_path: Path) -> None:
    config = small_site().migrated(tmp_path)

    assert config.path == (tmp_path / "calpool.toml").resolve()
    with sqlite3.connect(tmp_path / "calpool.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "alembic_version" in tables


def test_a_variant_leaves_the_original_as_it_was(tmp_path: Path) -> None:
    original = small_site()

    variant = original.copy().pool("rooms", members=["room-a"]).without("calendars", "room-b")

    assert list(load_config(variant.write(tmp_path)).calendars) == ["alice", "room-a"]
    assert list(load_config(original.write(tmp_path)).pools["rooms"].members) == [
        "room-a", "room-b"]


def test_text_read_back_gives_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "calpool.toml"
    path.write_text(BASE, encoding="utf-8")
    from_text = load_config(path)

    rebuilt = load_config(SiteConfig.read(path).write(tmp_path))

    assert rebuilt == from_text


@pytest.mark.parametrize(("variant", "problem"), [
    (lambda site: site.event_type("consult", owner="room-a"),
     "event_types.consult.owner: 'room-a' is a room"),
    (lambda site: site.event_type("consult", horizon="120d"),
     "event_types.consult.horizon: 120d reaches past sync.window_future (90d)"),
    (lambda site: site.calendar("alice", account="nowhere"),
     "calendars.alice.account: unknown account 'nowhere'"),
    (lambda site: site.account("dav", provider="caldav", password="inline"),
     "accounts.dav.password: secrets are never inline; use password_env or password_file"),
    (lambda site: site.event_type("x", owner="alice"),
     "event_types.x.title: required key is missing"),
])
def test_invalid_combinations_are_calpools_errors(
    tmp_path: Path, variant: Callable[[SiteConfig], SiteConfig], problem: str
) -> None:
    path = variant(small_site()).write(tmp_path)  # the builder writes it as asked

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert any(line.startswith(problem) for line in raised.value.problems), (
        raised.value.problems)
