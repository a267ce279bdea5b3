"""The retention job, dropping calendars the config lost, reloading the
config in process, and `calpool status` over a store in a known state."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from daemon.cli import dispatch
from daemon.config import load_config
from daemon.http.app import create_app
from daemon.reload import Reloader
from daemon.scheduler import forget_removed_calendars, purge_expired
from engine.core.model import Attendee, Booking, BookingStatus
from engine.store import IdempotencyState, Link, PushChannel
from tests.daemon.ops.conftest import API_TOKEN, NOW, Built, app_config

BuildApp = Callable[..., Built]


def booking(booking_id: str, start: datetime, room: str = "room-a") -> Booking:
    return Booking(id=booking_id, event_type="consult", start=start,
                   end=start + timedelta(minutes=30), owner="alice", rooms={"rooms": room},
                   booked_at=start - timedelta(days=1),
                   attendee=Attendee("Jane", f"{booking_id}@example.org"))


def test_retention_purges_what_is_older_than_its_period(build_app: BuildApp) -> None:
    built = build_app()  # retention: bookings 30d, idempotency keys 24h
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    with built.app.store.unit_of_work() as uow:
        uow.bookings.reserve(booking("old", old))
        uow.bookings.set_status("old", BookingStatus.CONFIRMED, old)
        uow.bookings.reserve(booking("recent", recent))
        for token, expires, used in (("expired", NOW - timedelta(hours=1), None),
                                     ("open", NOW + timedelta(days=1), None),
                                     ("used-long-ago", old, old),
                                     ("used-lately", NOW, recent)):
            uow.links.create(Link(token_sha256=token, event_type="consult",
                                  created_at=old - timedelta(days=1), expires_at=expires,
                                  attendee=Attendee("Jane", "jane@example.org"), used_at=used))
        uow.idempotency.begin("ops", "stale-key", "x", NOW - timedelta(hours=25))
        uow.idempotency.begin("ops", "fresh-key", "x", NOW - timedelta(hours=1))
        uow.commit()

    purged = purge_expired(built.app)

    assert purged is not None
    assert (purged.bookings, purged.idempotency_keys, purged.links) == (1, 1, 2)
    with built.app.store.reader() as uow:
        assert uow.bookings.get("old") is None and uow.bookings.history("old") == []
        assert uow.bookings.get("recent") is not None
        assert [link.token_sha256 for link in uow.links.unused(NOW)] == ["open"]
        assert uow.links.get("used-lately") is not None
        assert uow.links.get("used-long-ago") is None
        assert uow.idempotency.begin("ops", "stale-key", "y", NOW).state is IdempotencyState.NEW
        assert uow.idempotency.begin("ops", "fresh-key", "y", NOW).state is \
            IdempotencyState.MISMATCH
    assert purge_expired(built.app) == type(purged)(0, 0, 0)  # nothing left to purge


def test_retention_runs_in_one_process_at_a_time(build_app: BuildApp) -> None:
    built = build_app()
    old = NOW - timedelta(days=31)
    with built.app.store.unit_of_work() as uow:
        uow.bookings.reserve(booking("old", old))
        uow.bookings.set_status("old", BookingStatus.CONFIRMED, old)
        assert uow.leases.try_acquire("job:retention", "other-host:42:abc",
                                      timedelta(minutes=2), NOW)
        uow.commit()

    assert purge_expired(built.app) is None  # the other process runs it
    with built.app.store.unit_of_work() as uow:
        assert uow.bookings.get("old") is not None
        uow.leases.release("job:retention", "other-host:42:abc")
        uow.commit()
    purged = purge_expired(built.app)
    assert purged is not None and purged.bookings == 1


def test_calendars_removed_from_the_config_leave_the_cache_not_the_bookings(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture
) -> None:
    built = build_app()
    built.synced("room-b", NOW)
    with built.app.store.unit_of_work() as uow:
        uow.bookings.reserve(booking("kept", NOW + timedelta(days=1), room="room-b"))
        uow.channels.save(PushChannel(id="ch-1", calendar_id="room-b", calendar="room-b",
                                      resource_id="r",
                                      token_sha256="0" * 64, expires_at=NOW + timedelta(days=2),
                                      created_at=NOW))
        uow.commit()
    smaller_config = app_config().pool("rooms", members=["room-a"]).without("calendars", "room-b")
    built.path.write_text(smaller_config.text(), encoding="utf-8")
    smaller = Reloader(lambda: load_config(built.path)).prepare(built.app)
    assert smaller is not None

    with caplog.at_level(logging.INFO):
        assert forget_removed_calendars(smaller) == ["room-b"]

    with built.app.store.reader() as uow:
        assert uow.calendars.keys() == ["alice", "room-a"]
        assert uow.channels.get("ch-1") is None
        assert uow.bookings.get("kept") is not None
    assert "push channel ch-1 of removed calendar room-b runs out at" in caplog.text
    assert forget_removed_calendars(smaller) == []


def test_a_broken_reload_keeps_the_running_app(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture
) -> None:
    built = build_app()
    built.path.write_text(app_config().event_type("x", owner="nobody").text(), encoding="utf-8")

    with caplog.at_level(logging.ERROR, "calpool.daemon"):
        assert Reloader(lambda: load_config(built.path)).prepare(built.app) is None

    assert "reload refused, the running configuration stays" in caplog.text
    assert "event_types.x" in caplog.text
    watched = built.app.metrics.watched()
    assert watched is not None and watched.status is built.app.status


def test_a_reload_whose_token_cannot_be_read_is_refused(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_app()
    built.path.write_text(app_config(token_env="CALPOOL_UNSET_TOKEN").text(), encoding="utf-8")
    monkeypatch.delenv("CALPOOL_UNSET_TOKEN", raising=False)

    with caplog.at_level(logging.ERROR, "calpool.daemon"):
        assert Reloader(lambda: load_config(built.path)).prepare(built.app) is None

    assert "CALPOOL_UNSET_TOKEN is not set" in caplog.text


def test_a_good_reload_swaps_event_types_and_tokens_over_the_same_store(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_app()
    api = create_app(built.app)
    monkeypatch.setenv("CALPOOL_NEW_TOKEN", "a-brand-new-token-for-the-desk")
    changed = (app_config(token_env="CALPOOL_NEW_TOKEN")
               .daemon(database="sqlite:///elsewhere.db")
               .event_type("follow-up", title="Follow-up", duration="15m", owner="alice"))
    built.path.write_text(changed.text(), encoding="utf-8")
    reloader = Reloader(lambda: load_config(built.path))

    with caplog.at_level(logging.INFO, "calpool.daemon"):
        new = reloader.prepare(built.app)
    assert new is not None
    reloader.swap_into(api, new)

    assert new.store is built.app.store and new.metrics is built.app.metrics
    assert new.config.daemon.database_url == built.app.config.daemon.database_url
    assert "daemon.database changed; a restart applies it" in caplog.text
    assert "2 event types (+follow-up)" in caplog.text
    with TestClient(api) as client:
        old = client.get("/v1/event-types", headers={"Authorization": f"Bearer {API_TOKEN}"})
        fresh = client.get("/v1/event-types",
                           headers={"Authorization": "Bearer a-brand-new-token-for-the-desk"})
    assert old.status_code == 401
    assert [entry["key"] for entry in fresh.json()["event_types"]] == ["consult", "follow-up"]


def status(built: Built, *flags: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(["--config", str(built.path), "status", *flags], out, err)
    return code, out.getvalue(), err.getvalue()


def test_status_names_stale_and_failed_calendars_and_the_channel(build_app: BuildApp) -> None:
    built = build_app()
    now = datetime.now(UTC)
    built.synced("alice", now - timedelta(minutes=1))
    built.synced("room-a", now - timedelta(minutes=1))
    built.synced("room-b", now - timedelta(minutes=1))
    with built.app.store.unit_of_work() as uow:
        uow.channels.save(PushChannel(id="ch-alice", calendar_id="alice", calendar="alice",
                                      resource_id="r",
                                      token_sha256="0" * 64, expires_at=now + timedelta(days=2),
                                      created_at=now))
        uow.outbox.enqueue("write", {}, due_at=now, now=now - timedelta(seconds=90))
        uow.commit()

    code, out, _ = status(built, "--json")
    document = json.loads(out)
    assert code == 0 and document["ok"] is True
    assert document["calendars"][0]["push_channel"]["id"] == "ch-alice"
    assert document["outbox"]["depth"] == 1 and document["outbox"]["oldest_age_seconds"] >= 90

    built.synced("room-a", now - timedelta(minutes=20))  # stale_after is 15m
    built.failed("room-b", now, "401 from the server: check the password")
    code, out, err = status(built)

    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert " ok " in lines["alice"] and "push channel until" in lines["alice"]
    assert " stale " in lines["room-a"] and "(20m" in lines["room-a"]
    assert " failed " in lines["room-b"] and "check the password" in lines["room-b"]
    assert out.splitlines()[-1].startswith("outbox: 1 jobs waiting, oldest waiting 1m")
    assert err == "2 calendar(s) not ok (stale after 15m): room-a, room-b\n"


def test_status_on_an_unmigrated_database_names_the_upgrade(build_app: BuildApp) -> None:
    built = build_app()
    built.app.store.close()
    (built.path.parent / "calpool.db").unlink()

    code, _, err = status(built)

    assert code == 1 and "calpool db upgrade" in err
