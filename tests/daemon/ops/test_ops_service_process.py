"""`calpool run` as systemd runs it: notifications, signals, reload, logs.

Each test starts the daemon as a process over a site on Radicale, with
``NOTIFY_SOCKET`` pointing at a socket the test reads.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from engine.store import Store
from tests.daemon.ops.conftest import (
    API_TOKEN,
    DAV_PASSWORD,
    NotifySocket,
    Site,
    StartDaemon,
    calpool,
    environment,
    get,
    wait_for,
)
from tests.engine.services.conftest import event_ics, put_event
from tests.support.caldav_servers import Server, free_port


def test_ready_comes_once_the_listener_answers_then_watchdog_and_stopping(
    site: Site, notify_socket: NotifySocket, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(NOTIFY_SOCKET=str(notify_socket.path), WATCHDOG_USEC="1000000")

    ready = notify_socket.next_with("READY")

    # At READY=1 the hook answers at once: systemd may start dependants now.
    assert get(f"{site.url}/healthz", timeout=2)[0] == 200
    assert ready["READY"] == "1"
    assert ready["STATUS"].startswith(f"serving {site.url}; 3 calendars")
    assert "1 event types" in ready["STATUS"]
    assert notify_socket.next_with("WATCHDOG", timeout=5)["WATCHDOG"] == "1"

    def scraped() -> dict[str, float]:
        status, text = get(f"{site.url}/metrics")
        assert status == 200 and isinstance(text, str)
        return {f"{sample.name}{sorted(sample.labels.items())}": sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    synced = "calpool_syncs_total[('calendar', 'alice'), ('outcome', 'synced')]"
    wait_for(lambda: scraped().get(synced) == 1, timeout=30, what="alice's sync in /metrics")
    requests = ("calpool_provider_requests_total"
                "[('account', 'dav'), ('outcome', '2xx'), ('provider', 'caldav')]")
    assert scraped()[requests] >= 1
    daemon.process.send_signal(signal.SIGTERM)
    assert notify_socket.next_with("STOPPING", timeout=10)["STOPPING"] == "1"
    assert daemon.process.wait(timeout=30) == 0, daemon.log()
    assert "Traceback" not in daemon.log()


# Enough that listing them takes a while even from a warm Radicale.
EVENTS = 300


def test_sigterm_during_a_sync_finishes_the_batch_and_exits_0(
    site: Site, radicale: Server, start_daemon: StartDaemon
) -> None:
    """The signal lands while room-a's first listing is in flight (its lease
    row is held); the daemon lets that batch commit, then exits 0 with
    every lease released and each calendar's events and cursor in step."""
    start = datetime(2027, 1, 4, 9, tzinfo=UTC)
    for n in range(EVENTS):
        begin = start + timedelta(days=n // 5, hours=n % 5)
        put_event(radicale, site.calendars["room-a"], f"e{n}",
                  event_ics(f"e{n}", begin, begin + timedelta(minutes=30)))
    database = f"sqlite:///{site.database}"
    daemon = start_daemon()

    # One store, read every 10 ms: the listing of the events from a warm
    # Radicale takes a fraction of a second, so a slower look can miss it.
    with Store.open(database) as watched:

        def syncing_room_a() -> bool:
            with watched.reader() as uow:
                state = uow.calendars.sync_state("room-a")
            return state is not None and state.last_attempt_at is not None \
                and state.last_success_at is None

        deadline = time.monotonic() + 30
        while not syncing_room_a():
            assert time.monotonic() < deadline, "timed out waiting for room-a's first sync"
            time.sleep(0.01)
    daemon.process.send_signal(signal.SIGTERM)

    assert daemon.process.wait(timeout=60) == 0, daemon.log()
    log = daemon.log()
    assert "received SIGTERM" in log and "Traceback" not in log
    with Store.open(database) as store, store.reader() as uow:
        state = uow.calendars.sync_state("room-a")
        assert state is not None and state.last_success_at is not None, log
        assert state.cursor is not None
        assert uow.events.count("room-a") == EVENTS
        now = datetime.now(UTC)
        assert uow.leases.held(now) == []


def test_sighup_with_a_broken_config_keeps_serving_and_a_good_one_takes_effect(
    site: Site, notify_socket: NotifySocket, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon(NOTIFY_SOCKET=str(notify_socket.path))
    notify_socket.next_with("READY")
    types_url = f"{site.url}/v1/event-types"

    def event_types() -> list[str]:
        status, document = get(types_url, API_TOKEN)
        assert status == 200, document
        assert isinstance(document, dict)
        return [entry["key"] for entry in document["event_types"]]

    assert event_types() == ["consultation"]

    site.config.write_text(site.config.read_text() + "\n[event_types.broken]\nowner = 'nobody'\n")
    daemon.process.send_signal(signal.SIGHUP)
    assert notify_socket.next_with("RELOADING", timeout=10)["RELOADING"] == "1"
    assert notify_socket.next_with("READY", timeout=10)["READY"] == "1"
    wait_for(lambda: "reload refused" in daemon.log(), timeout=10, what="the refusal")
    refusal = next(line for line in daemon.log().splitlines() if "reload refused" in line)
    assert "event_types.broken" in refusal
    assert event_types() == ["consultation"]

    site.write(port=free_port(), event_types=("follow-up",))
    daemon.process.send_signal(signal.SIGHUP)
    notify_socket.next_with("RELOADING", timeout=10)
    notify_socket.next_with("READY", timeout=30)

    assert event_types() == ["consultation", "follow-up"]  # still on the old port
    log = daemon.log()
    assert "http.listen changed; a restart applies it" in log
    assert "+follow-up" in log
    assert daemon.stop() == 0, daemon.log()
    assert "Traceback" not in daemon.log()


def test_logs_carry_no_secret_token_or_attendee_email(
    site: Site, start_daemon: StartDaemon
) -> None:
    """Debug logging of a whole run, JSON: a sync, a booking written to
    Radicale (its ATTENDEE line holds the address), the daemon listing it
    back, an authorised request.  caldav's debug log prints request and
    response bodies, so the attendee's address reaches the log records and
    must be blanked there."""
    site.write(daemon={"log_format": "json", "log_level": "debug"})
    email = "jane.customer@example.org"
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date()
    env = environment()
    assert calpool(site, "sync", env=env).returncode == 0
    booked = calpool(site, "book", "consultation", f"{tomorrow}T10:00", "--name", "Jane",
                     "--email", email, env=env)
    assert booked.returncode == 0, booked.stderr
    daemon = start_daemon()
    wait_for(lambda: get(f"{site.url}/healthz")[0] == 200, what="the listener")
    assert get(f"{site.url}/v1/event-types", API_TOKEN)[0] == 200
    database = f"sqlite:///{site.database}"

    def all_synced() -> bool:
        with Store.open(database) as store, store.reader() as uow:
            states = uow.calendars.sync_states()
            started = {state.calendar for state in states
                       if state.last_success_at and state.last_success_at > booked_at}
            return started == set(site.calendars)

    booked_at = datetime.now(UTC)
    wait_for(all_synced, timeout=40, what="a sync of every calendar after the booking")
    assert daemon.stop() == 0
    logs = {"sync": "", "book": booked.stderr, "run": daemon.log()}
    logs["sync"] = calpool(site, "sync", env=env).stderr
    everything = "\n".join(logs.values())
    for secret in (API_TOKEN, DAV_PASSWORD, email):
        assert secret not in everything, secret
    assert "[email]" in logs["run"], "the attendee's address never reached a record"
    records = [json.loads(line) for line in logs["run"].splitlines() if line.strip()]
    assert any(record.get("calendar") == "room-a" for record in records)
    assert {record["level"] for record in records} >= {"debug", "info"}


def test_status_exit_codes_follow_the_calendars(site: Site, radicale: Server) -> None:
    never = calpool(site, "status")
    assert never.returncode == 1
    assert "3 calendar(s) not ok" in never.stderr

    assert calpool(site, "sync").returncode == 0
    synced = calpool(site, "status", "--json")
    assert synced.returncode == 0, synced.stdout
    document = json.loads(synced.stdout)
    assert [entry["state"] for entry in document["calendars"]] == ["ok", "ok", "ok"]
    assert document["outbox"] == {"depth": 0, "oldest_age_seconds": None}

    radicale.request("DELETE", f"{radicale.home}{site.calendars['room-b']}")
    time.sleep(0.01)
    assert calpool(site, "sync").returncode == 1
    failed = calpool(site, "status")
    assert failed.returncode == 1
    line = next(line for line in failed.stdout.splitlines() if line.startswith("room-b"))
    assert " failed " in line and "last error:" in line
