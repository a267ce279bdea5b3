"""``calpool run`` against the Microsoft Graph fake when Graph misbehaves
(issue 17, faults).  The daemon serves https with push on, polls an hour
apart, as in ``test_microsoft_booking``: an M365 person (the owner) and a
pool of two room mailboxes of one tenant, all behind one account.

* A throttling storm on ONE room mailbox: every request for it is answered
  429 with ``Retry-After`` (Graph throttles per app and mailbox) until the
  storm ends.  While it lasts, a change in the owner's mailbox still
  reaches the slots promptly (that mailbox is not throttled, so calpool
  must not slow it down with the other's penalty), and ``calpool status``
  names the room calendar as throttled and retrying; once the storm is
  over the room's calendar is synced again by itself and its change
  reaches the slots (not failed for ever).

* The delta round forgotten mid-round: while the daemon pages through a
  room mailbox's first ``calendarView/delta`` listing (more events than one
  page), Graph forgets the round, so the next ``@odata.nextLink`` answers
  410 ``syncStateNotFound``.  The calendar is listed anew from a first
  page, and afterwards the slots are exactly what the fake's events say;
  a later change still arrives (the new round's deltaLink works).

Assertions are eventual with generous bounds; nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_microsoft_booking import (
    OWNER,
    ROOMS,
    SECRET_ENV,
    SETTLE_WITHIN,
    TOKEN,
    start_tls_daemon,
    write_config,
)
from tests.fakes.graph import GraphFake
from tests.support.caldav_servers import free_port

STORMED = ROOMS["room-a"]
STORM_RETRY_AFTER = 12
"""Graph's Retry-After during the storm, seconds: longer than calpool's
in-call retries wait, as Exchange asks after a burst."""
PROMPTLY = 8.0
"""How soon a change in an unthrottled mailbox reaches the slots during the
storm: about 2 s without one (the scheduler's sync-requested tick), and
less than the storm's Retry-After, so a change that had to wait out the
stormed mailbox's cool-down would come too late."""
STATUS_WITHIN = 20.0
"""How soon ``calpool status`` shows the stormed calendar throttled."""
CATCH_UP_WITHIN = 45.0
"""How soon after the storm the throttled room's change reaches the slots
(its sync is retried after the Retry-After)."""


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake() as running:
        running.add_mailbox(OWNER, timezone="Europe/Berlin")
        for address in ROOMS.values():
            running.add_room(address, name=address.split("@")[0].title(), delay=0.2)
        yield running


def eventually(check: Callable[[], Any], expected: Any, log: Path, *, within: float) -> float:
    """Wait until ``check()`` equals ``expected``; the seconds it took."""
    started = time.monotonic()
    while (seen := check()) != expected:
        assert time.monotonic() - started < within, (seen, log.read_text()[-4000:])
        time.sleep(0.2)
    return time.monotonic() - started


def busy(start: datetime, subject: str) -> dict[str, Any]:
    """A Graph event taking the hour from ``start``, as Outlook writes it."""
    return {"subject": subject, "showAs": "busy",
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"}}


def calendar_status(config: Path) -> dict[str, dict[str, Any]]:
    """``calpool status --json``, by calendar key."""
    done = subprocess.run([str(CALPOOL), "--config", str(config), "status", "--json"],
                          capture_output=True, text=True, env=environment(), timeout=60)
    document = json.loads(done.stdout)
    return {entry["calendar"]: entry for entry in document["calendars"]}


def throttled(entry: dict[str, Any]) -> bool:
    """Whether a calendar's status entry says, as an admin reads it, that
    the provider throttles it and calpool retries by itself."""
    error = entry["last_error"] or ""
    return entry["state"] == "failed" and "throttled" in error and "retrying" in error


class Site:
    """A running daemon over TLS and what the test asks of it."""

    def __init__(self, tmp_path: Path, fake: GraphFake) -> None:
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        fake.receiver_ca_file = fake.ca_file
        self.config = write_config(tmp_path, fake, port, tls=fake.issue_cert("127.0.0.1"))
        self.log = tmp_path / "daemon.log"
        self.fake = fake
        self.day = (datetime.now(UTC) + timedelta(days=2)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        self.client = httpx.Client(base_url=self.url, timeout=30, trust_env=False,
                                   verify=ssl.create_default_context(cafile=fake.ca_file),
                                   headers={"Authorization": f"Bearer {TOKEN}"})
        self.daemon = start_tls_daemon(self.config, self.log, self.url, fake.ca_file)

    def starts(self) -> set[datetime]:
        answer = self.client.get("/v1/event-types/consult/slots", params={
            "start": self.day.isoformat(), "end": (self.day + timedelta(days=1)).isoformat(),
            "timezone": "UTC"})
        assert answer.status_code == 200, answer.text
        return {datetime.fromisoformat(slot["start"]) for slot in answer.json()["slots"]}

    def live_subscriptions(self) -> int:
        return sum(not sub["deleted"] for sub in self.fake.subscriptions.values())

    def stop(self) -> None:
        self.client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        self.daemon.send_signal(signal.SIGTERM)
        code = self.daemon.wait(timeout=30)
        assert code == 0, self.log.read_text()[-3000:]
        assert "Traceback" not in self.log.read_text(), self.log.read_text()[-3000:]


def test_a_throttling_storm_on_one_mailbox_slows_that_mailbox_only(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    site = Site(tmp_path, fake)
    room_taken, owner_taken = site.day.replace(hour=10), site.day.replace(hour=13)
    try:
        eventually(site.live_subscriptions, 1 + len(ROOMS), site.log, within=60)
        eventually(lambda: {room_taken, owner_taken} <= site.starts(), True, site.log, within=60)
        # Room B is taken at 10:00 already: the slot lives on room A alone.
        fake.create(ROOMS["room-b"], busy(room_taken, "walk-in B"))

        fake.fail(path=f"^/v1.0/users/{STORMED}/", status=429, code="TooManyRequests",
                  message="Application is over its MailboxConcurrency limit.",
                  retry_after=STORM_RETRY_AFTER, lasting=120)
        fake.create(STORMED, busy(room_taken, "walk-in A"))  # notified; its sync meets 429s
        eventually(lambda: throttled(calendar_status(site.config)["room-a"]), True,
                   site.log, within=STATUS_WITHIN)

        fake.create(OWNER, busy(owner_taken, "dentist"))
        took = eventually(lambda: owner_taken in site.starts(), False, site.log, within=PROMPTLY)
        print(f"owner's change -> slot gone during the storm: {took:.2f} s")
        # The stormed room's change has not arrived: its 10:00 is still offered.
        assert room_taken in site.starts()
        status = calendar_status(site.config)
        assert status["alice"]["state"] == "ok", status["alice"]
        assert throttled(status["room-a"]), status["room-a"]
        assert f"Retry-After {STORM_RETRY_AFTER} s" in status["room-a"]["last_error"]

        fake.calm()
        calmed = time.monotonic()
        took = eventually(lambda: room_taken in site.starts(), False, site.log,
                          within=CATCH_UP_WITHIN)
        print(f"storm over -> the stormed room caught up: {took:.2f} s")
        eventually(lambda: calendar_status(site.config)["room-a"]["state"], "ok", site.log,
                   within=CATCH_UP_WITHIN - (time.monotonic() - calmed))
    finally:
        site.stop()


PAGE = 100
"""What calpool asks of Graph per page (``odata.maxpagesize``)."""


def busy_intervals(fake: GraphFake, mailbox: str) -> list[tuple[datetime, datetime]]:
    """The mailbox's busy time as the fake holds it (its events are UTC)."""
    def moment(value: dict[str, str]) -> datetime:
        assert value["timeZone"] == "UTC"
        return datetime.fromisoformat(value["dateTime"]).replace(tzinfo=UTC)

    return [(moment(e["start"]), moment(e["end"])) for e in fake.events(mailbox)
            if e.get("showAs", "busy") == "busy" and not e.get("isCancelled")]


def truth(fake: GraphFake, starts: list[datetime], length: timedelta) -> set[datetime]:
    """Of ``starts``, those the fake's calendars leave bookable: the owner
    free and at least one room of the pool free for the whole meeting."""
    def free(mailbox: str, start: datetime) -> bool:
        return all(end <= start or start + length <= begin
                   for begin, end in busy_intervals(fake, mailbox))

    return {start for start in starts
            if free(OWNER, start) and any(free(room, start) for room in ROOMS.values())}


def delta_requests(fake: GraphFake, mailbox: str) -> list[dict[str, list[str]]]:
    """The queries of the mailbox's ``calendarView/delta`` requests so far."""
    return [query for _, path, query, _ in list(fake.requests)
            if path.endswith(f"/users/{mailbox}/calendarView/delta")]


def test_a_delta_round_forgotten_while_paging_is_listed_anew(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    room = STORMED
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
    # Room A: six meetings on the day asked about and enough on later days
    # for the listing to take three pages; room B and the owner a few.
    for hour in (8, 9, 11, 13, 15, 17):
        fake.create(room, busy(day.replace(hour=hour), f"a {hour}"))
    for index in range(2 * PAGE + 20):
        later = day + timedelta(days=1 + index // 8, hours=8 + index % 8)
        fake.create(room, busy(later, f"a later {index}"))
    for hour in (9, 10, 13, 14):
        fake.create(ROOMS["room-b"], busy(day.replace(hour=hour), f"b {hour}"))
    fake.create(OWNER, busy(day.replace(hour=17, minute=30), "owner"))
    # The first page of room A's listing is answered at once, the second
    # held 3 s: Graph forgets the round meanwhile, so it answers 410.
    path = f"^/v1.0/users/{room}/calendarView/delta$"
    fake.fail(path=path, status=200, times=1)
    fake.fail(path=path, status=200, delay=3.0, times=1)
    forgotten = threading.Event()

    def forget_while_paging() -> None:
        deadline = time.monotonic() + 60
        while len(delta_requests(fake, room)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        fake.expire_delta_tokens(room)
        forgotten.set()

    threading.Thread(target=forget_while_paging, daemon=True).start()
    site = Site(tmp_path, fake)
    site.day = day
    length = timedelta(minutes=30)
    grid = [day.replace(hour=6) + index * length for index in range(28)]  # 06:00-20:00
    try:
        assert forgotten.wait(60), site.log.read_text()[-3000:]
        assert any("$skiptoken" in query for query in delta_requests(fake, room)[1:2])

        def offered() -> set[datetime]:
            return {start for start in site.starts() if start in grid}

        expected = truth(fake, grid, length)
        assert expected and expected != set(grid)  # the truth has both kinds
        took = eventually(offered, expected, site.log, within=60)
        print(f"slots equal the fake's truth {took:.2f} s after the round was forgotten")
        firsts = [query for query in delta_requests(fake, room) if "$skiptoken" not in query
                  and "$deltatoken" not in query]
        assert len(firsts) >= 2, firsts  # the listing started again from a first page
        assert sum("$skiptoken" in q for q in delta_requests(fake, room)) >= 3

        # The new round's deltaLink works: a later change arrives as a change
        # (made once Graph notifies of it: the subscriptions follow the first sync).
        eventually(site.live_subscriptions, 1 + len(ROOMS), site.log, within=SETTLE_WITHIN)
        fake.create(room, busy(day.replace(hour=10), "a 10"))
        eventually(offered, truth(fake, grid, length), site.log, within=SETTLE_WITHIN)
        assert day.replace(hour=10) not in site.starts()
    finally:
        site.stop()
