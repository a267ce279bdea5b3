"""Slot queries/s and bookings/s with 1, 2 and 3 ``calpool run`` on one PostgreSQL.

Each round: a fresh database (``initdb`` server started here) and fresh
calendars on Radicale (one owner, a 3-room pool), N daemons with the same
config (only ``http.listen`` differs), requests spread round-robin:

- slot queries: ``--clients`` threads asking one week of slots for
  ``--seconds`` seconds;
- bookings: ``--bookings`` POSTs at once, each for its own slot (none
  conflicts), ``confirm_within = "0s"`` (the reservation; the outbox writes
  afterwards), timed until every answer is in.

Printed: each figure and its ratio to one process, and the load average.
On a 2-core machine the ratio says more about contention (the daemons,
PostgreSQL, Radicale and this client share the cores) than about capacity.

    .venv/bin/python bench/scale_out.py [--seconds 5] [--clients 8] [--bookings 200]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_scale_out import Fleet, fire, healthy, wait_for
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.postgres import start_postgres

TOKEN = "scale-out-test-token"  # the token tests.e2e.test_scale_out.fire sends
ROOMS = ("room-a", "room-b", "room-c")


def config_text(radicale: Server, database: str, port: int, run: int) -> str:
    lines = ["[daemon]", f'database = "{database}"', 'log_level = "warning"', "",
             "[http]", f'listen = "127.0.0.1:{port}"', 'confirm_within = "0s"', "",
             "[sync]", "push = false", "",
             "[[api.tokens]]", 'name = "bench"',
             f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"',
             'scopes = ["slots", "book"]', "",
             "[accounts.dav]", 'provider = "caldav"', f'url = "{radicale.home}"', ""]
    for key in ("alice", *ROOMS):
        kind = "person" if key == "alice" else "room"
        lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "bench-{run}-{key}/"',
                  f'kind = "{kind}"', ""]
    members = ", ".join(f'"{room}"' for room in ROOMS)
    lines += ["[pools.rooms]", f"members = [{members}]", "",
              "[event_types.consult]", 'title = "Consultation"', 'duration = "30m"',
              'owner = "alice"', 'pools = ["rooms"]', ""]
    return "\n".join(lines)


def slot_queries(urls: list[str], clients: int, seconds: float) -> tuple[float, float]:
    """(queries per second, p99 seconds) over ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=urls[n % len(urls)], trust_env=False, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                answer = http.get("/v1/event-types/consult/slots")
                assert answer.status_code == 200, answer.text
                with lock:
                    latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return len(latencies) / seconds, latencies[int(0.99 * (len(latencies) - 1))]


def one_round(radicale: Server, postgres: object, folder: Path, processes: int, run: int,
              args: argparse.Namespace) -> tuple[float, float, float]:
    database_url = postgres.create_database()  # type: ignore[attr-defined]
    for key in ("alice", *ROOMS):
        radicale.make_calendar(f"bench-{run}-{key}")
    ports = [free_port() for _ in range(processes)]
    texts = [config_text(radicale, database_url, port, run) for port in ports]
    workdir = folder / f"round-{run}"
    workdir.mkdir()
    (workdir / "upgrade.toml").write_text(texts[0])
    subprocess.run([str(CALPOOL), "--config", str(workdir / "upgrade.toml"), "db", "upgrade"],
                   check=True, env=environment(), capture_output=True)
    fleet = Fleet(workdir)
    try:
        for index, (text, port) in enumerate(zip(texts, ports, strict=True)):
            fleet.start(index, text, port)
        wait_for(lambda: all(healthy(url) for url in fleet.urls), "the daemons", 120)
        slots_per_second, p99 = slot_queries(fleet.urls, args.clients, args.seconds)
        day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
        starts = [(day + timedelta(minutes=30 * n)).isoformat() for n in range(args.bookings)]
        statuses, wall = asyncio.run(fire(fleet.urls, starts))
        accepted = sum(status in (201, 202) for status in statuses)
        assert accepted == args.bookings, {s: statuses.count(s) for s in set(statuses)}
        return slots_per_second, p99, args.bookings / wall
    finally:
        fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bookings", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        radicale = start_radicale(folder)
        postgres = start_postgres()
        try:
            figures = [one_round(radicale, postgres, folder, n, n, args) for n in (1, 2, 3)]
        finally:
            postgres.stop()
            radicale.stop()
    base = figures[0]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"{args.clients} slot clients for {args.seconds:.0f} s, {args.bookings} bookings at once")
    for n, (slots, p99, bookings) in enumerate(figures, start=1):
        print(f"  {n} process{'es' if n > 1 else '  '}: slots {slots:7.1f}/s "
              f"(x{slots / base[0]:.2f}, p99 {p99 * 1000:6.1f} ms)   "
              f"bookings {bookings:6.1f}/s (x{bookings / base[2]:.2f})")


if __name__ == "__main__":
    main()
