"""`calpool sync --full` on many calendars stops on Ctrl-C (issue 24): exit
130, the calendars already synced are committed whole, the others are left
as they were (no attempt recorded, no event cached)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.store import Store
from tests.support.caldav_servers import Server, start_radicale
from tests.support.config_builder import SiteConfig
from tests.support.sites import CALPOOL, plain_environment, run_calpool

CALENDARS, PER_CALENDAR = 60, 60
START = datetime(2027, 1, 4, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("interrupt-radicale"))
    yield server
    server.stop()


def seed(server: Server, key: str) -> None:
    """One collection PUT: Radicale keeps each VEVENT as its own item."""
    stamp = "%Y%m%dT%H%M%SZ"
    events = []
    for n in range(PER_CALENDAR):
        start = START + timedelta(days=n % 50, hours=n % 8)
        events.append(
            f"BEGIN:VEVENT\r\nUID:{key}-{n}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:{start.strftime(stamp)}\r\n"
            f"DTEND:{(start + timedelta(minutes=30)).strftime(stamp)}\r\nEND:VEVENT\r\n")
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n"
            + "".join(events) + "END:VCALENDAR\r\n").encode()
    status, _, answer = server.request("PUT", f"{server.home}{key}/", body,
                                       {"Content-Type": "text/calendar"})
    assert status in (201, 204), answer[:200]


def test_ctrl_c_stops_a_full_sync_keeping_what_was_done(tmp_path: Path, radicale: Server) -> None:
    keys = [f"room-{n:02d}" for n in range(CALENDARS)]
    for key in keys:
        seed(radicale, key)
    config = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .sync(window_future="120d")
        .caldav_account("dav", url=radicale.home)
        .calendars({key: f"{key}/" for key in keys}, persons=set())
    )
    path = config.write(tmp_path)
    assert run_calpool(path, "db", "upgrade").returncode == 0
    process = subprocess.Popen(
        [str(CALPOOL), "--config", str(path), "sync", "--full"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plain_environment())
    try:
        with Store.open(f"sqlite:///{tmp_path / 'calpool.db'}") as store:
            def synced() -> int:
                with store.reader() as uow:
                    return sum(1 for s in uow.calendars.sync_states()
                               if s.last_success_at is not None)

            # Watch the store, not the clock: interrupt once a few are done.
            while synced() < 3:
                assert process.poll() is None, process.communicate()
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
            assert process.returncode == 130, (out, err)
            with store.reader() as uow:
                states = {s.calendar: s for s in uow.calendars.sync_states()}
                counts = {key: uow.events.count(key) for key in keys}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    done = {key for key in keys if states.get(key) and states[key].last_success_at is not None}
    untouched = {key for key in keys if key not in states or states[key].last_attempt_at is None}
    assert done | untouched == set(keys)  # nothing half-synced, nothing failed
    assert 3 <= len(done) < CALENDARS and untouched
    assert all(counts[key] == PER_CALENDAR for key in done)
    assert all(counts[key] == 0 for key in untouched)
    assert {line.split(":")[0] for line in out.splitlines()} == done
    assert f"interrupted: {len(done)} of {CALENDARS} calendars synced" in err
    assert "Traceback" not in err
