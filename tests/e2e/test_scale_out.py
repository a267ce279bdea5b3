"""Three ``calpool run`` processes on one PostgreSQL (issue 18).

The test starts PostgreSQL (``initdb``), Radicale and three daemons with the
same config (only ``http.listen`` differs) after one ``calpool db upgrade``.

- 500 bookings sent at once over 20 slots, spread round-robin over the three
  processes: exactly 20 accepted, every one confirmed, and on Radicale
  (read with raw REPORTs) exactly one copy per booking and calendar and no
  two events of one calendar overlapping.
- A calendar whose server accepts connections and never answers keeps the
  process that syncs it inside its first listing: the sync lease stays with
  that process past ``lease_ttl`` (its heartbeat), and once that process is
  killed with SIGKILL another takes the lease over within ``lease_ttl``
  (plus one poll).

Figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.postgres import (  # noqa: F401 - fixture used by name
    PostgresServer,
    database_name,
    postgres_server,
)

TOKEN = "scale-out-test-token"
ROOMS = ("room-a", "room-b", "room-c")
PROCESSES = 3
REQUESTS, SLOTS = 500, 20
LEASE_TTL = 3.0  # seconds
POLL = 2.0  # seconds: sync.poll_interval
HELD_FOR = 2 * LEASE_TTL + POLL + 2  # seconds one holder keeps sync:stuck before the kill
BOUND = 120.0  # seconds: generous bounds for the waits, which end once their condition holds


class SilentServer:
    """Accepts TCP connections, reads what comes and never answers: a
    CalDAV server whose listing takes as long as the client's timeout."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        # shutdown() first: close() alone leaves the socket listening while
        # the accept thread blocks in it, and new connections would hang.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._held:
            conn.close()


def config_text(radicale: Server, silent: SilentServer, database: str, port: int) -> str:
    lines = ["[daemon]", f'database = "{database}"', 'log_level = "info"', "",
             "[http]", f'listen = "127.0.0.1:{port}"', 'confirm_within = "0s"', "",
             "[sync]", "push = false", f'poll_interval = "{int(POLL)}s"',
             f'lease_ttl = "{int(LEASE_TTL)}s"', "",
             "[[api.tokens]]", 'name = "test"',
             f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"',
             'scopes = ["book"]', "",
             "[accounts.dav]", 'provider = "caldav"', f'url = "{radicale.home}"', "",
             "[accounts.stuck]", 'provider = "caldav"', f'url = "http://127.0.0.1:{silent.port}/"',
             ""]
    for key in ("alice", *ROOMS):
        kind = "person" if key == "alice" else "room"
        lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "scale-{key}/"',
                  f'kind = "{kind}"', ""]
    lines += ["[calendars.stuck]", 'account = "stuck"', 'id = "stuck/"', 'kind = "room"', ""]
    members = ", ".join(f'"{room}"' for room in ROOMS)
    lines += ["[pools.rooms]", f"members = [{members}]", "",
              "[event_types.consult]", 'title = "Consultation with {attendee_name}"',
              'duration = "30m"', 'owner = "alice"', 'pools = ["rooms"]', ""]
    return "\n".join(lines)


class Fleet:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def start(self, index: int, text: str, port: int) -> None:
        path = self.folder / f"calpool-{index}.toml"
        path.write_text(text)
        log = (self.folder / f"daemon-{index}.log").open("ab")
        self.processes.append(subprocess.Popen(
            [str(CALPOOL), "--config", str(path), "run"], stdout=log, stderr=subprocess.STDOUT,
            env=environment()))
        log.close()
        self.urls.append(f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")
                         for path in sorted(self.folder.glob("daemon-*.log")))


def wait_for(condition: object, what: str, timeout: float = BOUND) -> float:
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - began


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


async def fire(urls: list[str], starts: list[str]) -> tuple[list[int], float]:
    """One POST per start, all at once, round-robin over ``urls``."""
    clients = [httpx.AsyncClient(base_url=urls[n % len(urls)], trust_env=False, timeout=120,
                                 limits=httpx.Limits(max_connections=1),
                                 headers={"Authorization": f"Bearer {TOKEN}"})
               for n in range(len(starts))]
    gate = asyncio.Event()

    async def one(n: int, start: str) -> int:
        await gate.wait()
        answer = await clients[n].post("/v1/bookings", json={
            "event_type": "consult", "start": start,
            "attendee": {"name": f"Guest {n}", "email": f"guest{n}@example.com"}})
        return answer.status_code

    try:
        tasks = [asyncio.create_task(one(n, start)) for n, start in enumerate(starts)]
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        gate.set()
        statuses = await asyncio.gather(*tasks)
        return list(statuses), time.perf_counter() - began
    finally:
        for client in clients:
            await client.aclose()


def bookings(url: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/v1/bookings", headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=30, trust_env=False)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, object]] = answer.json()["bookings"]
    return found


def stored_events(server: Server, calendar: str) -> list[tuple[str, str, str]]:
    """(start, end, booking id) of every event on the server, by a raw REPORT."""
    query = (b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
             b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
             b'<c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>')
    status, _, body = server.request("REPORT", f"{server.home}{calendar}/", query,
                                     {"Depth": "1", "Content-Type": "application/xml"})
    assert status == 207, status
    text = body.decode().replace("\r\n ", "").replace("\n ", "")
    return list(zip(re.findall(r"^DTSTART[^:\r\n]*:(\S+)\r?$", text, re.M),
                    re.findall(r"^DTEND[^:\r\n]*:(\S+)\r?$", text, re.M),
                    re.findall(r"^X-CALPOOL-BOOKING[^:\r\n]*:(\S+)\r?$", text, re.M),
                    strict=True))


def lease_holder(postgres: PostgresServer, database: str, name: str) -> str | None:
    with postgres.connect(database) as connection:
        row = connection.execute(
            "SELECT holder FROM leases WHERE name = %s AND expires_at > now()", (name,)
        ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(tmp_path)
    yield made
    made.stop()


def test_three_processes_on_one_postgresql(
    tmp_path: Path, postgres_server: PostgresServer, fleet: Fleet  # noqa: F811
) -> None:
    began = time.monotonic()
    radicale = start_radicale(tmp_path)
    silent = SilentServer()
    database_url = postgres_server.create_database()
    database = database_name(database_url)
    try:
        for key in ("alice", *ROOMS):
            radicale.make_calendar(f"scale-{key}")
        ports = [free_port() for _ in range(PROCESSES)]
        texts = [config_text(radicale, silent, database_url, port) for port in ports]
        first = tmp_path / "upgrade.toml"
        first.write_text(texts[0])
        subprocess.run([str(CALPOOL), "--config", str(first), "db", "upgrade"], check=True,
                       env=environment(), capture_output=True, timeout=120)
        for index, (text, port) in enumerate(zip(texts, ports, strict=True)):
            fleet.start(index, text, port)
        wait_for(lambda: all(healthy(url) for url in fleet.urls), "the three daemons")
        started = time.monotonic() - began

        # 500 bookings at once over 20 slots, round-robin over the processes.
        day = (datetime.now(UTC) + timedelta(days=1)).replace(hour=8, minute=0, second=0,
                                                              microsecond=0)
        slot_starts = [(day + timedelta(minutes=30 * n)).isoformat() for n in range(SLOTS)]
        statuses, wall = asyncio.run(
            fire(fleet.urls, [slot_starts[n % SLOTS] for n in range(REQUESTS)]))
        counted = {status: statuses.count(status) for status in sorted(set(statuses))}
        accepted = counted.get(201, 0) + counted.get(202, 0)  # 201: the writes were quick
        assert (accepted, counted.get(409)) == (SLOTS, REQUESTS - SLOTS), counted

        settle = wait_for(lambda: all(b["status"] != "pending" for b in bookings(fleet.urls[1])),
                          "every booking to leave pending")
        final = bookings(fleet.urls[2])
        assert [b["status"] for b in final] == ["confirmed"] * SLOTS
        ids = {str(b["id"]) for b in final}
        room_copies = 0
        for key in ("alice", *ROOMS):
            events = sorted(stored_events(radicale, f"scale-{key}"))
            overlaps = sum(1 for (_, end, _), (start, _, _) in itertools.pairwise(events)
                           if start < end)
            assert overlaps == 0, f"{key}: {overlaps} double bookings"
            booked = [booking for _, _, booking in events]
            assert len(booked) == len(set(booked)), f"{key}: a booking has two copies"
            assert set(booked) <= ids, f"{key}: a copy without a booking"
            if key == "alice":
                assert set(booked) == ids
            else:
                room_copies += len(booked)
        assert room_copies == SLOTS

        # The stuck calendar: its sync lease stays with one process past the ttl ...
        held_by: list[str | None] = [None]
        held_since = [time.monotonic()]

        def held_past_ttl() -> bool:
            holder = lease_holder(postgres_server, database, "sync:stuck")
            if holder != held_by[0]:
                held_by[0], held_since[0] = holder, time.monotonic()
            # Without a heartbeat a lease changes hands at most a ttl plus a poll
            # (and its jitter) after it was taken; the listing lasts 30 s.
            return holder is not None and time.monotonic() - held_since[0] > HELD_FOR

        wait_for(held_past_ttl, "one process to hold sync:stuck past the ttl")
        holder = held_by[0]
        assert holder is not None
        pid = int(holder.split(":")[1])
        victim = next(p for p in fleet.processes if p.pid == pid)

        # ... and is taken over within the ttl (plus a poll) once that process is killed.
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=30)
        taken_over = wait_for(
            lambda: lease_holder(postgres_server, database, "sync:stuck") not in (None, holder),
            "another process to take sync:stuck over")
        new_holder = lease_holder(postgres_server, database, "sync:stuck")
        assert new_holder is not None and int(new_holder.split(":")[1]) != pid
        assert taken_over <= LEASE_TTL + POLL + 3, taken_over
        assert time.monotonic() - killed_at < BOUND

        print(f"\nscale-out: {PROCESSES} processes up in {started:.1f} s; {REQUESTS} bookings "
              f"over {SLOTS} slots answered in {wall:.1f} s ({REQUESTS / wall:.0f}/s): "
              f"{counted}; all confirmed {settle:.1f} s later; 0 double bookings; "
              f"sync:stuck held {HELD_FOR:.0f} s by one process (heartbeat), taken over "
              f"{taken_over:.1f} s after kill -9 "
              f"(lease_ttl {LEASE_TTL:.0f} s, poll {POLL:.0f} s); "
              f"total {time.monotonic() - began:.1f} s")
    except BaseException:
        print(fleet.logs()[-6000:])
        raise
    finally:
        silent.close()  # the stuck listings fail at once: the daemons stop without waiting
        fleet.stop()
        radicale.stop()
        postgres_server.drop_database(database)


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_sql() -> list[tuple[str, str]]:
    """The README's database setup ("Running several processes"): each
    ``psql`` here-document with the database it runs in."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Running several processes"):]
    found = re.findall(r"^sudo -u postgres psql(?: -d (\w+))? <<'SQL'\n(.*?)^SQL$", section,
                       re.M | re.S)
    return [(database or "postgres", body) for database, body in found]


def renamed(sql: str) -> str:
    sql = re.sub(r"\bDATABASE calpool\b", "DATABASE readme_db", sql)
    sql = re.sub(r"\bcalpool_admin\b", "readme_admin", sql)
    return re.sub(r"\bcalpool\b", "readme_app", sql)


def test_the_readme_database_setup_works_as_written(
    tmp_path: Path, postgres_server: PostgresServer  # noqa: F811
) -> None:
    """The roles of the README: the owner migrates, the daemons' role syncs,
    books and reads status, and cannot change the schema."""
    blocks = readme_sql()
    assert [database for database, _ in blocks] == ["postgres", "calpool"]
    # The test server's superuser is called calpool: the README's names, renamed.
    blocks = [("postgres" if database == "postgres" else "readme_db", renamed(body))
              for database, body in blocks]
    radicale = start_radicale(tmp_path)
    try:
        for database, body in blocks:
            with postgres_server.connect(database) as connection:
                for statement in filter(None, (part.strip() for part in body.split(";"))):
                    connection.execute(statement.encode())
        for key in ("alice", "room-a"):
            radicale.make_calendar(f"roles-{key}")
        socket_dir = postgres_server.socket_dir

        def config(role: str) -> Path:
            path = tmp_path / f"{role}.toml"
            path.write_text("\n".join([
                "[daemon]",
                f'database = "postgresql+psycopg://{role}@/readme_db?host={socket_dir}"',
                "", "[sync]", "push = false", "",
                "[accounts.dav]", 'provider = "caldav"', f'url = "{radicale.home}"', "",
                "[calendars.alice]", 'account = "dav"', 'id = "roles-alice/"', 'kind = "person"',
                "", "[calendars.room-a]", 'account = "dav"', 'id = "roles-room-a/"',
                'kind = "room"', "", "[pools.rooms]", 'members = ["room-a"]', "",
                "[event_types.consult]", 'title = "Consultation"', 'duration = "30m"',
                'owner = "alice"',
                'pools = ["rooms"]', ""]))
            return path

        def calpool(path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(CALPOOL), "--config", str(path), *argv], text=True,
                                  capture_output=True, env=environment(), timeout=120)

        admin, daemon = config("readme_admin"), config("readme_app")
        refused = calpool(daemon, "db", "upgrade")
        assert refused.returncode == 1, refused.stderr  # the daemons' role may not migrate
        assert "permission denied" in refused.stderr
        upgraded = calpool(admin, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        synced = calpool(daemon, "sync")
        assert synced.returncode == 0, synced.stderr
        start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=0, second=0,
                                                                microsecond=0)
        booked = calpool(daemon, "book", "consult", start.isoformat(), "--name", "Jane",
                         "--email", "jane@example.com")
        assert booked.returncode == 0, booked.stderr
        status = calpool(daemon, "status")
        assert status.returncode == 0, status.stderr
        assert "config: fingerprint" in status.stdout
    finally:
        radicale.stop()
        postgres_server.drop_database("readme_db")
        with postgres_server.connect() as connection:
            for role in ("readme_app", "readme_admin"):
                connection.execute(f"DROP ROLE IF EXISTS {role}".encode())
