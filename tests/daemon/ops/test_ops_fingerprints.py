"""Several processes on one database with different configs: each records
its config's fingerprint; one whose config is not the newest says so (log,
``calpool status``) and drops no calendar it does not know; the newest
config, or ``calpool db forget-calendar``, decides."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from daemon.cli import dispatch
from daemon.config import load_config
from daemon.scheduler import forget_removed_calendars
from daemon.wiring import App, build
from tests.daemon.ops.conftest import Built, app_config
from tests.daemon.ops.test_ops_jobs import BuildApp, booking


def second_process(built: Built, name: str, site_config_text: str,
                   clock: list[datetime]) -> App:
    """Another process on the same database, with its own config file."""
    path = built.path.parent / name
    path.write_text(site_config_text, encoding="utf-8")
    return build(load_config(path), store=built.app.store, clock=lambda: clock[0])


def cli(path: object, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(["--config", str(path), *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_process_with_an_older_config_drops_no_calendar_the_newest_serves(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: every process dropped the calendars its own config did
    not name at start, so a host restarted with last week's file deleted
    the calendars the others had just been given."""
    now = datetime.now(UTC).replace(microsecond=0)
    old_clock = [now - timedelta(minutes=10)]
    old_text = app_config().pool("rooms", members=["room-a"]).without("calendars", "room-b").text()
    built = build_app()  # the newest config: alice, room-a, room-b
    old = second_process(built, "old.toml", old_text, old_clock)
    try:
        # Last week: the only config seen, so it decides.
        assert forget_removed_calendars(old) == ["room-b"]
        built.clock[0] = now  # this week's config adds room-b and starts
        built.synced("room-b", now)
        assert forget_removed_calendars(built.app) == []

        old_clock[0] = now + timedelta(minutes=1)  # the old host restarts, file unchanged
        with caplog.at_level(logging.INFO):
            assert forget_removed_calendars(old) == []

        with built.app.store.reader() as uow:
            assert uow.calendars.keys() == ["alice", "room-a", "room-b"]
            assert uow.events.count("room-b") == 1
        assert "differs from the newest one in the database" in caplog.text
        assert "calendars only in the newest: room-b" in caplog.text

        _, out, _ = cli(built.path.parent / "old.toml", "status", "--json")
        section = json.loads(out)["config"]
        assert section["current"] is False
        assert section["newest"] == built.app.config.fingerprint
        assert {entry["holder"]: entry["current"] for entry in section["processes"]} == {
            built.app.leases.holder: True, old.leases.holder: False}
        _, out, _ = cli(built.path.parent / "old.toml", "status")
        assert "differs from the newest" in out

        # A reload is deliberate: the reloaded (old) file becomes the newest and decides.
        old_clock[0] = now + timedelta(minutes=2)
        assert forget_removed_calendars(old, reload=True) == ["room-b"]
    finally:
        old.retire()


def test_forget_calendar_drops_a_calendar_no_config_names(build_app: BuildApp) -> None:
    built = build_app()
    built.synced("room-b", datetime.now(UTC))
    with built.app.store.unit_of_work() as uow:
        uow.bookings.reserve(booking("kept", datetime.now(UTC) + timedelta(days=1),
                                     room="room-b"))
        uow.commit()
    smaller = built.path.parent / "smaller.toml"
    smaller.write_text(app_config().pool("rooms", members=["room-a"])
                       .without("calendars", "room-b").text(), encoding="utf-8")

    code, _, err = cli(built.path, "db", "forget-calendar", "room-b")
    assert code == 1 and "is in this config" in err  # the config still names it
    code, out, _ = cli(smaller, "db", "forget-calendar", "room-b")
    assert code == 0 and "forgot calendar room-b" in out
    code, _, err = cli(smaller, "db", "forget-calendar", "room-b")
    assert code == 1 and "the database has no calendar 'room-b'" in err

    with built.app.store.reader() as uow:
        assert uow.calendars.keys() == ["alice", "room-a"]
        assert uow.bookings.get("kept") is not None


def test_a_process_alone_has_the_newest_config_even_an_older_one(build_app: BuildApp) -> None:
    """Only the configs of running processes compete: once the others have
    stopped, a process restarted with an older (reverted) file decides."""
    now = datetime.now(UTC).replace(microsecond=0)
    built = build_app()  # alice, room-a, room-b
    built.clock[0] = now - timedelta(minutes=30)
    assert forget_removed_calendars(built.app) == []
    smaller_text = app_config().pool("rooms", members=["room-a"]).without(
        "calendars", "room-b").text()
    clock = [now - timedelta(minutes=20)]
    smaller = second_process(built, "smaller.toml", smaller_text, clock)
    try:
        assert forget_removed_calendars(smaller) == ["room-b"]  # the newest, alone alive
        built.app.processes.leave()
        smaller.processes.leave()
        built.clock[0] = now  # the first config again, restarted (not reloaded), alone
        assert built.app.processes.announce().current
        with built.app.store.reader() as uow:
            assert uow.processes.newest_config(now - timedelta(minutes=2)) is not None
    finally:
        smaller.retire()
