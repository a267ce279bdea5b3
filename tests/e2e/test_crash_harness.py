"""The crash harness: ``calpool run`` killed with SIGKILL, round after
round, at random points of sync and of booking, under load; afterwards
nothing accepted is lost and the provider and the cache agree.

Each round starts the daemon, lets it work, and kills it (``kill -9``):

- a *sync* round kills it a random time (0.2-2.5 s) after it answers
  ``/healthz``, while every calendar is polled every second and a churn
  thread writes, moves and deletes foreign events on Radicale, so the kill
  lands inside listings and apply batches;
- a *booking* round kills it right after a client's booking was accepted
  (201 or 202), while its provider writes and outbox jobs are in flight.

Clients (threads) book random slots and cancel some of their bookings the
whole time, the careful way: an unknown outcome (a refused or dropped
connection, a 5xx, a 409 "still running") is retried with the same
``Idempotency-Key`` and body until the answer is definite.  Cancels are
retried until 200 (``DELETE`` is idempotent).

After the last round the daemon runs again until the outbox is drained,
then the harness checks, from raw CalDAV listings of Radicale and the
daemon's answers:

- 0 lost accepted bookings: every booking a client was told about exists
  and is ``confirmed`` or, if its client cancelled it, ``cancelled``;
- 0 bookings left ``pending`` once the outbox is drained;
- no booking the clients were not told about (no second booking for a key);
- 0 duplicate provider events: each confirmed booking has exactly one copy
  in its owner's calendar and in its room's, and none elsewhere;
- 0 events without a booking: every calpool copy on the server belongs to
  a confirmed booking;
- the cache equals the provider: each calendar's cached events (the store,
  read directly) name the same events as the server's listing.

Seeded (``CALPOOL_CRASH_SEED``, default 23); ``CALPOOL_CRASH_ROUNDS``
(default 4, about a minute) sets the kills; the long run is
``CALPOOL_CRASH_ROUNDS=40 pytest -s tests/e2e/test_crash_harness.py``
(see README, "Crash harness").
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.caldav.account import booking_uid, copy_uid
from engine.core.model import Interval
from engine.store import Store
from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_booking_crash import event_uids, start_daemon
from tests.support.booking_copies import booking_key
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.config_builder import SiteConfig

TOKEN = "crash-harness-token"
SEED = int(os.environ.get("CALPOOL_CRASH_SEED", "23"))
ROUNDS = int(os.environ.get("CALPOOL_CRASH_ROUNDS", "4"))
CLIENTS = 4
OPEN_PER_CLIENT = 6  # requests of unknown outcome a client keeps open at most
PEOPLE = ("alice",)
ROOMS = ("room-a", "room-b")
CALENDARS = (*PEOPLE, *ROOMS)
BOOKING_DAYS = 10  # slots are booked on the next ten days
FOREIGN_DAY = 40  # foreign events churn from this day on, where nobody books
DRAIN_WITHIN = 120.0
# After the last kill, an outcome still unknown after this fails the run: it
# is past the 2 min after which a dead request's key is taken over.  (During
# the rounds a key may be claimed, killed and claimed again many times.)
CLIENT_GIVES_UP = 200.0


@dataclass
class Ledger:
    """What the clients were told, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, str] = field(default_factory=dict)  # booking id -> Idempotency-Key
    cancelled: set[str] = field(default_factory=set)
    refused: int = 0
    retries: int = 0
    unresolved: list[str] = field(default_factory=list)
    accepted_now: threading.Event = field(default_factory=threading.Event)


def slot_starts() -> list[str]:
    first = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                            microsecond=0)
    return [(first + timedelta(minutes=30 * n)).isoformat()
            for n in range(BOOKING_DAYS * 48)]


def site_config(server: Server, listen: int, *,
                database: str = "sqlite:///calpool.db") -> SiteConfig:
    """The harness's site: one person, a pool of two rooms on ``server``,
    polls every second, short claims and leases (a dead process's work is
    taken over within seconds)."""
    config = (
        SiteConfig()
        .daemon(database=database, outbox_claim_hold="3s")
        .http(listen=f"127.0.0.1:{listen}", confirm_within="1s")
        .sync(poll_interval="1s", lease_ttl="5s", window_future="90d")
        .api_token("clients", sha256=hashlib.sha256(TOKEN.encode()).hexdigest(),
                   scopes=["book"])
        .caldav_account("dav", url=server.home)
        .pool("rooms", members=list(ROOMS), assignment="random")
        .event_type("consult", title="Consultation with {attendee_name}", duration="30m",
                    owner="alice", pools=["rooms"], horizon="60d")
    )
    for name in CALENDARS:
        config.calendar(name, account="dav", id=f"{name}/",
                        kind="person" if name in PEOPLE else "room")
    return config


def write_config(folder: Path, server: Server, listen: int) -> Path:
    for name in CALENDARS:
        server.make_calendar(name)
    path = site_config(server, listen).write(folder)
    upgraded = subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    return path


def definite(answer: httpx.Response) -> bool:
    """Whether an answer ends a request (anything but a 5xx and the
    idempotency 409 of a request still running)."""
    if answer.status_code >= 500:
        return False
    if answer.status_code == 409:
        return answer.json().get("type") == "/problems/slot-unavailable"
    return True


@dataclass
class Request:
    """A request whose outcome is not known yet: sent again, unchanged (same
    key, same body), until its answer is definite."""

    what: str
    send: Callable[[], httpx.Response]
    settle: Callable[[httpx.Response], None]
    last: str = "not sent"


class RoundRobin:
    """One HTTP client per process, each request to the next in turn, as a
    load balancer in front of several ``calpool run`` sends them."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._clients = [httpx.Client(base_url=url, timeout=15, trust_env=False,
                                      headers={"Authorization": f"Bearer {TOKEN}"})
                         for url in urls]
        self._turns = itertools.count()

    def _next(self) -> httpx.Client:
        return self._clients[next(self._turns) % len(self._clients)]

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self._next().post(path, **options)

    def delete(self, path: str) -> httpx.Response:
        return self._next().delete(path)

    def close(self) -> None:
        for client in self._clients:
            client.close()


class Client(threading.Thread):
    """Books random slots and cancels about a third of what it got, the
    careful way: a request with an unknown outcome stays open and is sent
    again with the same key and body on each turn (beside new requests, as
    a busy front desk would), until its answer is definite."""

    def __init__(self, n: int, urls: Sequence[str], starts: list[str], ledger: Ledger,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"crash-client-{n}")
        self.random = random.Random(SEED * 100 + n)
        self.n, self.starts, self.ledger, self.stop = n, starts, ledger, stop
        self.open: list[Request] = []
        self.http = RoundRobin(urls)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if len(self.open) < OPEN_PER_CLIENT:
                    self.open.append(self.booking())
                self.turn()
            deadline = time.monotonic() + CLIENT_GIVES_UP
            while self.open and time.monotonic() < deadline:
                self.turn()
                time.sleep(0.2)
            with self.ledger.lock:
                self.ledger.unresolved += [f"{r.what}: {r.last}" for r in self.open]
        except Exception as exc:  # an unexpected answer: the run fails with it
            with self.ledger.lock:
                self.ledger.unresolved.append(f"{self.name}: {exc!r}")
        finally:
            self.http.close()

    def turn(self) -> None:
        """Send each open request once; keep those still unknown."""
        still = []
        pending, self.open = self.open, []  # settling a booking may open a cancel
        for request in pending:
            try:
                answer = request.send()
                if definite(answer):
                    request.settle(answer)
                    continue
                request.last = f"{answer.status_code} {answer.text[:300]}"
            except httpx.TransportError as exc:
                request.last = repr(exc)
            with self.ledger.lock:
                self.ledger.retries += 1
            still.append(request)
        self.open = still + self.open
        if still:
            time.sleep(0.1)

    def booking(self) -> Request:
        key = f"c{self.n}-{uuid.UUID(int=self.random.getrandbits(128))}"
        body = {"event_type": "consult", "start": self.random.choice(self.starts),
                "attendee": {"name": f"Guest {self.n}", "email": f"guest{self.n}@example.com"}}
        return Request(f"POST {key}",
                       lambda: self.http.post("/v1/bookings", json=body,
                                              headers={"Idempotency-Key": key}),
                       lambda answer: self.booked(key, answer))

    def booked(self, key: str, answer: httpx.Response) -> None:
        if answer.status_code == 409:  # the slot is taken: definite
            with self.ledger.lock:
                self.ledger.refused += 1
            return
        assert answer.status_code in (201, 202), answer.text
        booking_id: str = answer.json()["id"]
        with self.ledger.lock:
            assert booking_id not in self.ledger.accepted, "one booking for two keys"
            self.ledger.accepted[booking_id] = key
        self.ledger.accepted_now.set()
        if self.random.random() < 0.33:
            self.open.append(self.cancel(booking_id))

    def cancel(self, booking_id: str) -> Request:
        def cancelled(answer: httpx.Response) -> None:
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "cancelled", answer.text
            with self.ledger.lock:
                self.ledger.cancelled.add(booking_id)

        return Request(f"DELETE {booking_id}",
                       lambda: self.http.delete(f"/v1/bookings/{booking_id}"), cancelled)


class Churn(threading.Thread):
    """Writes, moves and deletes foreign events on every calendar, far from
    the booked days, so that each poll has changes to list and apply."""

    def __init__(self, server: Server, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="crash-churn")
        self.server, self.stop = server, stop
        self.random = random.Random(SEED)
        self.live: dict[str, set[str]] = {name: set() for name in CALENDARS}
        self.writes = 0

    def run(self) -> None:
        counter = itertools.count()
        base = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
        while not self.stop.wait(0.05):
            calendar = self.random.choice(CALENDARS)
            live = self.live[calendar]
            if live and self.random.random() < 0.3:
                uid = self.random.choice(sorted(live))
                status, _, _ = self.server.request(
                    "DELETE", f"{self.server.home}{calendar}/{uid}.ics")
                assert status in (200, 204), status
                live.discard(uid)
            else:
                uid = (self.random.choice(sorted(live)) if live and self.random.random() < 0.3
                       else f"foreign-{next(counter)}")
                start = base + timedelta(days=FOREIGN_DAY + self.random.randrange(30),
                                         minutes=30 * self.random.randrange(16))
                self.put(calendar, uid, start)
                live.add(uid)
            self.writes += 1

    def put(self, calendar: str, uid: str, start: datetime) -> None:
        stamp = "%Y%m%dT%H%M%SZ"
        ics = "\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crash harness//EN", "BEGIN:VEVENT",
            f"UID:{uid}", f"DTSTAMP:{datetime.now(UTC).strftime(stamp)}",
            f"DTSTART:{start.strftime(stamp)}",
            f"DTEND:{(start + timedelta(minutes=45)).strftime(stamp)}",
            "SUMMARY:Foreign meeting", "END:VEVENT", "END:VCALENDAR", ""])
        status, _, _ = self.server.request(
            "PUT", f"{self.server.home}{calendar}/{uid}.ics", ics.encode(),
            {"Content-Type": "text/calendar; charset=utf-8"})
        assert status in (201, 204), status


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Server]:
    server = start_radicale(tmp_path / "radicale")
    yield server
    server.stop()


def cached_names(database: str, calendar: str) -> list[str]:
    """The events the daemon's cache (the store at URL ``database``) holds
    for ``calendar``, named as :func:`event_uids` names the server's
    (calpool's copies by booking)."""
    store = Store.open(database)
    try:
        window = Interval(datetime(1900, 1, 1, tzinfo=UTC), datetime(8999, 1, 1, tzinfo=UTC))
        with store.reader() as uow:
            events = uow.events.in_window(calendar, window)
    finally:
        store.close()
    return sorted(booking_key(e.booking_id) if e.booking_id else e.uid for e in events)


def syncing(config: Path) -> bool:
    """Whether a sync lease is held: read just after a kill, the kill
    landed inside a sync (a lease is released when its sync ends)."""
    store = Store.open(f"sqlite:///{config.parent / 'calpool.db'}")
    try:
        with store.reader() as uow:
            now = datetime.now(UTC)
            return any(uow.leases.holder(name, now) is not None for name in CALENDARS)
    finally:
        store.close()


def bookings_of(client: httpx.Client) -> dict[str, dict[str, Any]]:
    answer = client.get("/v1/bookings", params={"start": "2000-01-01", "end": "8000-01-01"})
    assert answer.status_code == 200, answer.text
    return {b["id"]: b for b in answer.json()["bookings"]}


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def run_harness(tmp_path: Path, radicale: Server, rounds: int) -> dict[str, int]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, radicale, port)
    log = tmp_path / "daemon.log"
    rng = random.Random(SEED)
    ledger = Ledger()
    stop_load = threading.Event()
    stop_churn = threading.Event()
    churn = Churn(radicale, stop_churn)
    clients = [Client(n, [url], slot_starts(), ledger, stop_load) for n in range(CLIENTS)]
    kills = {"sync": 0, "booking": 0, "inside_a_sync": 0}
    daemon = start_daemon(config, log, url)
    churn.start()
    for client in clients:
        client.start()
    try:
        for n in range(rounds):
            if n % 2 == 0:
                time.sleep(rng.uniform(0.2, 2.5))  # a random point of the poll cycle
                kills["sync"] += 1
            else:
                ledger.accepted_now.clear()
                ledger.accepted_now.wait(timeout=10)  # a booking was just accepted
                time.sleep(rng.uniform(0.0, 0.3))
                kills["booking"] += 1
            kill(daemon)
            kills["inside_a_sync"] += syncing(config)
            daemon = start_daemon(config, log, url)
        time.sleep(1.0)  # load on the last start too: not an assertion's wait
        stop_load.set()
        stop_churn.set()
        for thread in (*clients, churn):
            thread.join(timeout=CLIENT_GIVES_UP + 30)
        assert ledger.unresolved == [], ledger.unresolved

        with httpx.Client(base_url=url, timeout=15, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            deadline = time.monotonic() + DRAIN_WITHIN
            while True:
                found = bookings_of(http)
                pending = sorted(i for i, b in found.items() if b["status"] == "pending")
                if not pending or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert pending == [], (pending, log.read_text()[-4000:])
            check_bookings(ledger, found)
            # A cancel is answered before its events leave the calendars
            # (outbox jobs): poll until the server agrees, with a bound.
            deadline = time.monotonic() + DRAIN_WITHIN
            while True:
                try:
                    check_provider(radicale, found)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.5)
            # The cache equals the provider once the restarted daemon polled
            # after the last change (polls come every second).
            deadline = time.monotonic() + 60
            while True:
                listed = {name: event_uids(radicale, name) for name in CALENDARS}
                cached = {name: cached_names(f"sqlite:///{config.parent / 'calpool.db'}", name)
                          for name in CALENDARS}
                if cached == listed or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert cached == listed, {name: (sorted(set(cached[name]) ^ set(listed[name])))
                                      for name in CALENDARS}
    finally:
        stop_load.set()
        stop_churn.set()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
    return {"kills": kills["sync"] + kills["booking"],
            **{f"kills_{k}": v for k, v in kills.items()},
            "accepted": len(ledger.accepted), "cancelled": len(ledger.cancelled),
            "refused": ledger.refused, "retries": ledger.retries,
            "foreign_writes": churn.writes}


def check_bookings(ledger: Ledger, found: dict[str, dict[str, Any]]) -> None:
    lost = sorted(set(ledger.accepted) - set(found))
    assert lost == [], f"accepted bookings lost: {lost}"
    unknown = sorted(set(found) - set(ledger.accepted))
    assert unknown == [], f"bookings no client was told about: {unknown}"
    wrong = {i: b["status"] for i, b in found.items()
             if b["status"] != ("cancelled" if i in ledger.cancelled else "confirmed")}
    assert wrong == {}, wrong


def check_provider(server: Server, found: dict[str, dict[str, Any]]) -> None:
    listed = {name: event_uids(server, name) for name in CALENDARS}
    for name, names in listed.items():
        copies = [n for n in names if n.startswith("booking:")]
        duplicates = sorted({n for n in copies if copies.count(n) > 1})
        assert duplicates == [], f"{name}: duplicate events {duplicates}"
    confirmed = {i: b for i, b in found.items() if b["status"] == "confirmed"}
    for name, names in listed.items():
        orphans = sorted(n for n in names if n.startswith("booking:")
                         and n.removeprefix("booking:") not in confirmed)
        assert orphans == [], f"{name}: events without a confirmed booking {orphans}"
    for booking_id, booking in confirmed.items():
        key = booking_key(booking_id)
        where = sorted(name for name, names in listed.items() if key in names)
        assert where == sorted([booking["owner"], *booking["rooms"].values()]), (
            booking_id, where, booking["rooms"])


@pytest.mark.slow
@pytest.mark.timeout(600 + 30 * ROUNDS)
def test_sigkill_during_sync_and_booking_loses_nothing(tmp_path: Path,
                                                       radicale: Server) -> None:
    figures = run_harness(tmp_path, radicale, ROUNDS)
    print("crash harness:", figures)
    assert figures["kills"] == ROUNDS
    assert figures["accepted"] > 0 and figures["foreign_writes"] > 0, figures


def calpool_copy(server: Server, calendar: str, href: str, booking_id: str, *,
                 owner_uid: bool = False) -> None:
    """A copy of booking ``booking_id`` as calpool writes it (its UID and
    ``X-CALPOOL-BOOKING``), stored at ``href`` of ``calendar``; with
    ``owner_uid`` the other UID a copy may have (the owner's, which Radicale
    takes beside the first: it refuses one UID twice in a collection)."""
    uid = booking_uid(booking_id) if owner_uid else copy_uid(booking_id, f"{calendar}/")
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crash harness//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20270101T000000Z",
        "DTSTART:20270104T090000Z", "DTEND:20270104T093000Z", f"X-CALPOOL-BOOKING:{booking_id}",
        "END:VEVENT", "END:VCALENDAR", ""])
    status, _, _ = server.request("PUT", f"{server.home}{calendar}/{href}", ics.encode(),
                                  {"Content-Type": "text/calendar; charset=utf-8"})
    assert status == 201, status


def test_the_checks_catch_what_they_are_for(radicale: Server) -> None:
    """The harness's checks fail on a lost, unknown or wrongly final
    booking, a duplicate copy, an orphan copy and a missing copy."""
    ledger = Ledger()
    ledger.accepted = {"b1": "k1", "b2": "k2"}
    ledger.cancelled = {"b2"}
    confirmed = {"id": "b1", "status": "confirmed", "owner": "alice",
                 "rooms": {"rooms": "room-a"}}
    with pytest.raises(AssertionError, match="lost"):
        check_bookings(ledger, {"b1": confirmed})
    with pytest.raises(AssertionError, match="no client"):
        check_bookings(ledger, {"b1": confirmed, "b2": {"status": "cancelled"},
                                "b3": {"status": "confirmed"}})
    with pytest.raises(AssertionError):
        check_bookings(ledger, {"b1": confirmed, "b2": {"status": "confirmed"}})
    check_bookings(ledger, {"b1": confirmed, "b2": {"status": "cancelled"}})

    for name in CALENDARS:
        radicale.make_calendar(name)
    calpool_copy(radicale, "alice", "one.ics", "b1")
    with pytest.raises(AssertionError):  # the room's copy is missing
        check_provider(radicale, {"b1": confirmed})
    calpool_copy(radicale, "room-a", "one.ics", "b1")
    check_provider(radicale, {"b1": confirmed})
    calpool_copy(radicale, "room-b", "orphan.ics", "b9")
    with pytest.raises(AssertionError, match="without a confirmed booking"):
        check_provider(radicale, {"b1": confirmed})
    radicale.request("DELETE", f"{radicale.home}room-b/orphan.ics")
    calpool_copy(radicale, "alice", "two.ics", "b1", owner_uid=True)
    with pytest.raises(AssertionError, match="duplicate"):
        check_provider(radicale, {"b1": confirmed})
