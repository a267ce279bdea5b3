"""Booking through the HTTP hook: 500 concurrent requests over 20 slots.

A real ``calpool run`` (a subprocess, SQLite) with its calendars on a real
Radicale on loopback: one owner and a pool of three rooms.  ``--requests``
POSTs /v1/bookings are sent at once (asyncio + httpx, one connection each),
spread evenly over ``--slots`` half-hour slots, so exactly one per slot can
win and the rest must get 409.  Two runs, each on fresh calendars and a
fresh database:

- ``confirm_within = "5s"``: the winners wait for their provider writes
  (owner + room on Radicale) and answer 201;
- ``confirm_within = "0s"``: the reservation alone, answered 202; the
  outbox writes afterwards.

Printed: p50/p99 latency of accepted and refused answers, wall time and
throughput, and the double bookings found on the Radicale side afterwards
(events of one calendar that overlap, read with a raw REPORT): must be 0.

    .venv/bin/python bench/booking.py [--requests 500] [--slots 20]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.caldav_servers import Server, free_port, start_radicale

CALPOOL = Path(sys.executable).parent / "calpool"
TOKEN = "bench-booking-token-not-a-secret"
ROOMS = ("room-a", "room-b", "room-c")
_runs = iter(range(1, 100))


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def config_text(server: Server, port: int, confirm_within: str, run: int) -> str:
    lines = ['[daemon]', 'database = "sqlite:///calpool.db"', 'log_level = "warning"', "",
             "[http]", f'listen = "127.0.0.1:{port}"', f'confirm_within = "{confirm_within}"', "",
             "[[api.tokens]]", 'name = "bench"',
             f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"', 'scopes = ["book"]', "",
             "[accounts.dav]", 'provider = "caldav"', f'url = "{server.home}"', ""]
    for key in ("alice", *ROOMS):
        server.make_calendar(f"{key}-{run}")
        kind = "person" if key == "alice" else "room"
        lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "{key}-{run}/"',
                  f'kind = "{kind}"', ""]
    members = ", ".join(f'"{room}"' for room in ROOMS)
    lines += ["[pools.rooms]", f"members = [{members}]", "",
              "[event_types.consult]", 'title = "Consultation with {attendee_name}"',
              'duration = "30m"', 'owner = "alice"', 'pools = ["rooms"]', ""]
    return "\n".join(lines)


def start_daemon(folder: Path, config: str) -> subprocess.Popen[bytes]:
    path = folder / "calpool.toml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if k != "CALPOOL_CONFIG"}
    subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"], check=True, env=env,
                   capture_output=True)
    log = (folder / "daemon.log").open("ab")
    return subprocess.Popen([str(CALPOOL), "--config", str(path), "run"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)


async def wait_until_up(url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(300):
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"the daemon at {url} did not come up")


async def fire(url: str, starts: list[str]) -> tuple[list[tuple[int, float]], float]:
    """Send one POST per start, all at once; (status, seconds) each, and
    the wall time."""
    # A client each: one client's pool of hundreds of connections rescans
    # them all on every answer, and that O(n²) bookkeeping, not the daemon,
    # would set the pace (most of this process's CPU, measured).
    # One TLS context for all (unused on http://, but each client would
    # build its own, seconds for hundreds).
    tls = ssl.create_default_context()
    clients = [httpx.AsyncClient(base_url=url, trust_env=False, timeout=120, verify=tls,
                                 limits=httpx.Limits(max_connections=1),
                                 headers={"Authorization": f"Bearer {TOKEN}"})
               for _ in starts]
    gate = asyncio.Event()

    async def one(n: int, start: str) -> tuple[int, float]:
        await gate.wait()
        began = time.perf_counter()
        answer = await clients[n].post("/v1/bookings", json={
            "event_type": "consult", "start": start,
            "attendee": {"name": f"Guest {n}", "email": f"guest{n}@example.com"}})
        return answer.status_code, time.perf_counter() - began

    try:
        tasks = [asyncio.create_task(one(n, start)) for n, start in enumerate(starts)]
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        gate.set()
        results = await asyncio.gather(*tasks)
        return list(results), time.perf_counter() - began
    finally:
        for client in clients:
            await client.aclose()


async def settle(url: str, timeout: float = 120) -> int:
    """Wait until no booking is pending; returns how many are confirmed."""
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        deadline = time.monotonic() + timeout
        while True:
            bookings = (await client.get("/v1/bookings")).json()["bookings"]
            if all(b["status"] != "pending" for b in bookings) or time.monotonic() > deadline:
                return sum(b["status"] == "confirmed" for b in bookings)
            await asyncio.sleep(0.5)


def stored_events(server: Server, calendar: str) -> list[tuple[str, str]]:
    query = (b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
             b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
             b'<c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>')
    status, _, body = server.request("REPORT", f"{server.home}{calendar}/", query,
                                     {"Depth": "1", "Content-Type": "application/xml"})
    assert status == 207, status
    text = body.decode()
    return list(zip(re.findall(r"^DTSTART[^:\r\n]*:(\S+)\r?$", text, re.M),
                    re.findall(r"^DTEND[^:\r\n]*:(\S+)\r?$", text, re.M), strict=True))


def double_bookings(server: Server, run: int) -> tuple[int, int]:
    """(events stored, pairs of overlapping events within one calendar)."""
    stored = overlaps = 0
    for key in ("alice", *ROOMS):
        events = sorted(stored_events(server, f"{key}-{run}"))
        stored += len(events)
        overlaps += sum(1 for (_, end), (start, _) in itertools.pairwise(events)
                        if start < end)
    return stored, overlaps


def run_once(server: Server, folder: Path, confirm_within: str, requests: int,
             slots: int) -> None:
    run = next(_runs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = folder / f"run-{run}"
    workdir.mkdir()
    daemon = start_daemon(workdir, config_text(server, port, confirm_within, run))
    try:
        asyncio.run(wait_until_up(url))
        first = (datetime.now(UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0,
                                                                microsecond=0)
        slot_starts = [(first + timedelta(minutes=30 * n)).isoformat() for n in range(slots)]
        starts = [slot_starts[n % slots] for n in range(requests)]
        results, wall = asyncio.run(fire(url, starts))
        confirmed = asyncio.run(settle(url))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    accepted = [seconds for status, seconds in results if status in (201, 202)]
    refused = [seconds for status, seconds in results if status == 409]
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    stored, overlaps = double_bookings(server, run)
    print(f"confirm_within = {confirm_within}: {requests} requests over {slots} slots")
    print(f"  answers: {dict(sorted(statuses.items()))}")
    print(f"  accepted: p50 {percentile(accepted, 0.5) * 1000:7.1f} ms   "
          f"p99 {percentile(accepted, 0.99) * 1000:7.1f} ms")
    print(f"  refused:  p50 {percentile(refused, 0.5) * 1000:7.1f} ms   "
          f"p99 {percentile(refused, 0.99) * 1000:7.1f} ms")
    print(f"  all:      p50 {percentile([s for _, s in results], 0.5) * 1000:7.1f} ms   "
          f"p99 {percentile([s for _, s in results], 0.99) * 1000:7.1f} ms")
    print(f"  wall {wall:.2f} s, {requests / wall:.0f} requests/s")
    print(f"  afterwards: {confirmed} bookings confirmed, {stored} events on Radicale, "
          f"double bookings: {overlaps}")
    if overlaps or statuses.get(201, 0) + statuses.get(202, 0) != slots:
        raise SystemExit("FAILED: a slot was booked twice or not at all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--slots", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="calpool-bench-booking-") as tmp:
        folder = Path(tmp)
        server = start_radicale(folder)
        try:
            for confirm_within in ("5s", "0s"):
                run_once(server, folder, confirm_within, args.requests, args.slots)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
