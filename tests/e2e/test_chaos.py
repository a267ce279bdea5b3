"""Chaos: three ``calpool run`` on one PostgreSQL, one of them killed with
SIGKILL at a random moment every few seconds and started again, while
clients book and cancel through all three and foreign meetings churn on the
calendars (issue 18).

The processes share one config (only ``http.listen`` differs) after one
``calpool db upgrade``; the clients are the crash harness's careful ones
(:mod:`tests.e2e.test_crash_harness`), sending each request to the next
process in turn as a load balancer would, so a killed process's requests
are retried on the others with the same ``Idempotency-Key``.  Once
``CALPOOL_CHAOS_BOOKINGS`` bookings have a definite answer the kills stop,
the clients settle what they still have open, and the run checks:

- every accepted booking is ``confirmed`` (or ``cancelled``, if its client
  cancelled it), none is lost, none was made twice, none is left pending;
- on Radicale, read with raw REPORTs: exactly one copy per confirmed
  booking in its owner's and its room's calendar, no copy without one;
- the shared cache equals the provider, calendar by calendar;
- every calendar has synced within ``sync.stale_after``;
- no outbox job is left pending, given up or claimed, and no lease is held
  by a process that was killed.

Seeded (``CALPOOL_CHAOS_SEED``, default 18).  ``make test`` runs the short
form (``CALPOOL_CHAOS_BOOKINGS`` 300, under a minute: a request killed in
flight is taken over once its process has been silent for ``lease_ttl``);
the long run is ``CALPOOL_CHAOS_BOOKINGS=1000 pytest -s tests/e2e/test_chaos.py``
(README, "Running several processes").  Figures are printed (``-s``).
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store import Store
from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_booking_crash import event_uids, start_daemon
from tests.e2e.test_crash_harness import (  # noqa: F401 - the radicale fixture is used by name
    CALENDARS,
    CLIENT_GIVES_UP,
    CLIENTS,
    TOKEN,
    Churn,
    Client,
    Ledger,
    bookings_of,
    cached_names,
    check_bookings,
    check_provider,
    kill,
    radicale,
    site_config,
    slot_starts,
)
from tests.support.caldav_servers import Server, free_port
from tests.support.postgres import (  # noqa: F401 - fixture used by name
    PostgresServer,
    database_name,
    postgres_server,
)

SEED = int(os.environ.get("CALPOOL_CHAOS_SEED", "18"))
BOOKINGS = int(os.environ.get("CALPOOL_CHAOS_BOOKINGS", "300"))
PROCESSES = 3
KILL_EVERY = (1.0, 4.0)  # seconds between two kills, uniformly
STALE_AFTER = timedelta(seconds=30)
SETTLE_WITHIN = 180.0  # seconds: a bound for each wait of the checks


class Fleet:
    """The three processes, each with its config, log and URL."""

    def __init__(self, folder: Path, server: Server, database: str) -> None:
        self.configs: list[Path] = []
        self.logs: list[Path] = []
        self.urls: list[str] = []
        for index in range(PROCESSES):
            port = free_port()
            config = site_config(server, port, database=database).sync(
                stale_after=f"{int(STALE_AFTER.total_seconds())}s")
            (folder / f"process-{index}").mkdir()
            self.configs.append(config.write(folder / f"process-{index}"))
            self.logs.append(folder / f"process-{index}" / "daemon.log")
            self.urls.append(f"http://127.0.0.1:{port}")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed_pids: set[int] = set()

    def start_all(self) -> None:
        self.processes = [start_daemon(config, log, url)
                          for config, log, url in zip(self.configs, self.logs, self.urls,
                                                      strict=True)]

    def kill_and_restart(self, index: int) -> None:
        self.killed_pids.add(self.processes[index].pid)
        kill(self.processes[index])
        self.processes[index] = start_daemon(self.configs[index], self.logs[index],
                                             self.urls[index])

    def stop(self) -> list[int | None]:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        codes: list[int | None] = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=60))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes

    def log_tail(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)


def eventually(check: Callable[[], None], what: str) -> None:
    """Run ``check`` until it stops raising AssertionError, at most SETTLE_WITHIN."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                print(f"chaos: gave up waiting for {what}")
                raise
        time.sleep(0.5)


def outbox_states(postgres: PostgresServer, database: str) -> dict[str, int]:
    """How many outbox jobs are in each state, and how many are claimed."""
    with postgres.connect(database_name(database)) as connection:
        rows = connection.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        claimed = connection.execute(
            "SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL").fetchone()
    states = {str(state): int(count) for state, count in rows}
    states["claimed"] = int(claimed[0]) if claimed else 0
    return states


@pytest.mark.slow
@pytest.mark.timeout(900 + 2 * BOOKINGS)
def test_kill_9_of_one_process_among_three_loses_nothing(
    tmp_path: Path, radicale: Server, postgres_server: PostgresServer  # noqa: F811
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    database = postgres_server.create_database()
    for name in CALENDARS:
        radicale.make_calendar(name)
    fleet = Fleet(tmp_path, radicale, database)
    upgraded = subprocess.run([str(CALPOOL), "--config", str(fleet.configs[0]), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr

    ledger = Ledger()
    stop_load, stop_churn = threading.Event(), threading.Event()
    churn = Churn(radicale, stop_churn)
    clients = [Client(n, fleet.urls[n % PROCESSES:] + fleet.urls[:n % PROCESSES], slot_starts(),
                      ledger, stop_load) for n in range(CLIENTS)]
    kills = 0
    fleet.start_all()
    churn.start()
    for client in clients:
        client.start()
    try:
        load_bound = time.monotonic() + 120 + 2 * BOOKINGS
        while len(ledger.accepted) + ledger.refused < BOOKINGS:
            assert time.monotonic() < load_bound, (
                f"only {len(ledger.accepted) + ledger.refused} of {BOOKINGS} bookings answered",
                fleet.log_tail())
            time.sleep(rng.uniform(*KILL_EVERY))  # a random moment of sync and booking
            fleet.kill_and_restart(rng.randrange(PROCESSES))
            kills += 1
        loaded = time.monotonic() - began
        stop_load.set()
        stop_churn.set()
        for thread in (*clients, churn):
            thread.join(timeout=CLIENT_GIVES_UP + 30)
        assert ledger.unresolved == [], ledger.unresolved
        settled = time.monotonic() - began

        with httpx.Client(base_url=fleet.urls[0], timeout=15, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            found: dict[str, dict[str, Any]] = {}

            def none_pending() -> None:
                found.clear()
                found.update(bookings_of(http))
                assert [i for i, b in found.items() if b["status"] == "pending"] == []

            eventually(none_pending, "every booking to leave pending")
            check_bookings(ledger, found)
            # A cancel is answered before its events leave the calendars.
            eventually(lambda: check_provider(radicale, found), "the copies on Radicale")

        def cache_is_the_provider() -> None:
            listed = {name: event_uids(radicale, name) for name in CALENDARS}
            cached = {name: cached_names(database, name) for name in CALENDARS}
            assert cached == listed, {name: sorted(set(cached[name]) ^ set(listed[name]))
                                      for name in CALENDARS}

        eventually(cache_is_the_provider, "the cache to equal Radicale")

        def nothing_left_behind() -> None:
            states = outbox_states(postgres_server, database)
            assert (states.get("pending", 0), states.get("dead", 0), states["claimed"]) == (
                0, 0, 0), states
            store = Store.open(database)
            try:
                now = datetime.now(UTC)
                with store.reader() as uow:
                    synced = {state.calendar: state.last_success_at
                              for state in uow.calendars.sync_states()}
                    held = uow.leases.held(now)
            finally:
                store.close()
            stale = {name: at for name, at in synced.items()
                     if at is None or now - at > STALE_AFTER}
            assert stale == {}, stale
            by_the_dead = [lease.name for lease in held
                           if int(lease.holder.split(":")[1]) in fleet.killed_pids]
            assert by_the_dead == [], by_the_dead

        eventually(nothing_left_behind, "the outbox, syncs and leases to settle")
    finally:
        stop_load.set()
        stop_churn.set()
        codes = fleet.stop()
    assert codes == [0] * PROCESSES, (codes, fleet.log_tail())
    texts = [log.read_text(errors="replace") for log in fleet.logs]
    assert not any("Traceback" in text for text in texts), fleet.log_tail()
    figures = {"bookings_answered": len(ledger.accepted) + ledger.refused,
               "accepted": len(ledger.accepted), "cancelled": len(ledger.cancelled),
               "refused": ledger.refused, "retries": ledger.retries, "kills": kills,
               "foreign_writes": churn.writes, "load_s": round(loaded, 1),
               "settled_s": round(settled, 1), "total_s": round(time.monotonic() - began, 1)}
    print("chaos:", figures)
    assert kills > 0 and figures["accepted"] > 0, figures
