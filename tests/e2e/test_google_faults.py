"""``calpool run`` with TLS on loopback against the Google Calendar fake
when Google misbehaves (issue 16, "Faults"); push on, polls an hour apart,
so only the webhook, a retry or a renewal can bring a change.  Each case
proves:

- ``kill -9`` between the insert and the store update: the owner's event
  lands on Google while its answer is held back, and the daemon is killed
  then.  After the restart the outbox writes the booking again; the insert
  with the id derived from the booking meets 409, the connector GETs that
  event and recognises it, and the booking ends confirmed with exactly one
  event on Google.
- 410 in the middle of an incremental listing: Google invalidates the sync
  token while the daemon pages through more than one page of changes.
  The daemon drops that calendar's cursor and cache and lists the window
  anew: the cache then holds exactly Google's events (an event added
  meanwhile is busy, a deleted one is free again), nothing of the
  half-read listing.
- a 429 storm on one account: Google throttles one of two accounts with
  ``Retry-After``.  The other account's change still reaches the slots
  sooner than that Retry-After (each account's pushed syncs run in a worker
  of their own, :class:`daemon.scheduler.SyncRequestedJob`); ``calpool
  status`` names the throttled calendar as failed with Google's 429 (or the
  cool-down it started) and the healthy one as ok; once the storm ends the
  throttled calendar catches up by itself (it is not failed for ever).
- a channel that expires: Google grants a watch channel shorter than the
  ttl asked for.  The daemon's channel job (run at once by a reload)
  opens a new channel, persists it and stops the old one, and a later
  change reaches the slots through the new channel's webhook.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.google.account import event_id
from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_google_push import start
from tests.fakes.google_calendar import GoogleCalendarFake
from tests.support import sites
from tests.support.caldav_servers import free_port

TOKEN = "google-faults-token"
ADMIN = "calpool-admin@acme.test"
ALICE = "alice@acme.test"
BOB = "bob@acme.test"
USERS = {"alice": ALICE, "bob": BOB}
PROMPT = 15.0  # seconds a change of an unthrottled calendar may take (it takes about 1)
STORM_RETRY_AFTER = 10  # seconds Google asks bob's account to wait in the storm
SETTLE = 60.0  # seconds for what waits on a retry (a failed calendar is retried every 30 s)


def events_path(user: str) -> str:
    """The path regex of a user's events collection as the fake sees it (decoded)."""
    return rf"^/calendar/v3/calendars/{re.escape(user)}/events$"


@pytest.fixture
def fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake(tls=True) as running:
        running.delegate(ADMIN)
        for user in USERS.values():
            running.delegate(user)
            running.add_calendar(user)
        running.receiver_ca_file = running.ca_file  # the fake verifies the daemon's certificate
        yield running


def write_config(folder: Path, fake: GoogleCalendarFake, port: int, *,
                 users: Sequence[str] = ("alice",), confirm_within: str = "10s") -> Path:
    """A site over TLS with push on and polls an hour apart; each user in
    ``users`` is a person in an account of its own (its own service-account
    key, so its own limiter) with an event type ``<user>-consult``."""
    cert, private_key = fake.issue_cert("127.0.0.1")
    parts = [f"""\
[daemon]
database = "sqlite:///calpool.db"
outbox_claim_hold = "3s"   # a killed daemon's claims are taken over soon

[http]
listen = "127.0.0.1:{port}"
public_url = "https://127.0.0.1:{port}"
tls_cert_file = "{cert}"
tls_key_file = "{private_key}"
confirm_within = "{confirm_within}"

[sync]
push = true
poll_interval = "1h"
safety_poll = "1h"
lease_ttl = "5s"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["book", "slots"]
"""]
    for user in users:
        key = folder / f"service-account-{user}.json"
        key.write_text(json.dumps(fake.service_account_info(
            client_email=f"calpool-{user}@acme-proj.iam.gserviceaccount.com")), encoding="utf-8")
        parts.append(f"""
[accounts.{user}-work]
provider = "google"
service_account_file = "{key}"
subject = "{ADMIN}"
api_url = "{fake.api_url}"
ca_file = "{fake.ca_file}"

[calendars.{user}]
account = "{user}-work"
id = "{USERS[user]}"
subject = "{USERS[user]}"
kind = "person"

[event_types.{user}-consult]
title = "Consultation with {{attendee_name}}"
duration = "30m"
owner = "{user}"
""")
    path = sites.write_config(folder, "".join(parts))
    upgraded = subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    return path


class Site:
    """One running ``calpool run`` and what a test asks of it."""

    def __init__(self, folder: Path, fake: GoogleCalendarFake, *,
                 users: Sequence[str] = ("alice",), confirm_within: str = "10s") -> None:
        port = free_port()
        self.folder = folder
        self.fake = fake
        self.config = write_config(folder, fake, port, users=users,
                                   confirm_within=confirm_within)
        self.log = folder / "daemon.log"
        self.client = httpx.Client(
            base_url=f"https://127.0.0.1:{port}", trust_env=False, timeout=30,
            verify=ssl.create_default_context(cafile=fake.ca_file),
            headers={"Authorization": f"Bearer {TOKEN}"})
        self.daemon = start(self.config, self.log, self.client)

    def restart_after_kill(self) -> None:
        self.daemon.kill()  # SIGKILL: no shutdown, nothing finishes
        self.daemon.wait(timeout=30)
        self.daemon = start(self.config, self.log, self.client)

    def stop(self) -> int:
        self.client.close()  # first: an idle keep-alive connection holds up uvicorn's shutdown
        self.daemon.send_signal(signal.SIGTERM)
        return self.daemon.wait(timeout=30)

    def eventually(self, check: Callable[[], Any], what: str, within: float = SETTLE) -> Any:
        deadline = time.monotonic() + within
        while not (seen := check()):
            assert time.monotonic() < deadline, f"{what}:\n{self.log.read_text()[-4000:]}"
            time.sleep(0.1)
        return seen

    def starts(self, user: str, start: datetime, end: datetime) -> set[datetime]:
        """The slot starts ``<user>-consult`` offers in [start, end)."""
        answer = self.client.get(f"/v1/event-types/{user}-consult/slots", params={
            "start": start.isoformat(), "end": end.isoformat(), "timezone": "UTC"})
        assert answer.status_code == 200, answer.text
        return {datetime.fromisoformat(s["start"]) for s in answer.json()["slots"]}

    def free(self, user: str, at: datetime) -> bool:
        return at in self.starts(user, at, at + timedelta(minutes=1))

    def status(self) -> dict[str, dict[str, Any]]:
        """``calpool status --json`` by calendar."""
        shown = subprocess.run([str(CALPOOL), "--config", str(self.config), "status", "--json"],
                               capture_output=True, text=True, env=environment(), timeout=60)
        assert shown.stdout, shown.stderr
        return {c["calendar"]: c for c in json.loads(shown.stdout)["calendars"]}

    def channels_stored(self, count: int) -> None:
        """Wait until ``count`` channels are open at the fake and stored by
        the daemon (Google announces a channel before ``events.watch`` has
        answered, so that first delivery may be refused)."""
        self.eventually(lambda: f"push channels: {count} opened" in self.log.read_text(),
                        "the push channels were not stored")

    def cached_sources(self, calendar: str) -> set[str]:
        """The event ids the daemon's cache holds for ``calendar``."""
        database = self.config.parent / "calpool.db"  # sqlite:///calpool.db, beside the config
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT busy_events.source FROM busy_events JOIN calendars "
                "ON busy_events.calendar_id = calendars.id WHERE calendars.key = ?",
                (calendar,)).fetchall()
        return {row[0] for row in rows}


def slot_at(day: datetime, hours: float) -> datetime:
    return day + timedelta(hours=hours)


def event_at(at: datetime, summary: str, minutes: int = 30) -> dict[str, Any]:
    return {"summary": summary, "start": {"dateTime": at.isoformat()},
            "end": {"dateTime": (at + timedelta(minutes=minutes)).isoformat()}}


def live(fake: GoogleCalendarFake, user: str) -> list[dict[str, Any]]:
    return [e for e in fake.events(user) if e.get("status") != "cancelled"]


def next_day() -> datetime:
    return (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)


def finish(site: Site) -> None:
    code = site.stop()
    text = site.log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


# ---- kill -9 between the insert and the store update ------------------------------------


def test_killed_after_the_insert_landed_the_booking_ends_with_one_event(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    # The insert is carried out on Google's side, its answer held back for
    # long enough that the daemon dies before it could record the event.
    fake.fail(method="POST", path=events_path(ALICE), status=200, hold=60)
    site = Site(tmp_path, fake, confirm_within="0s")
    at = slot_at(next_day(), 9)
    try:
        site.eventually(lambda: site.free("alice", at), "the first sync did not happen")
        accepted = site.client.post("/v1/bookings", json={
            "event_type": "alice-consult", "start": at.isoformat(),
            "attendee": {"name": "Crash", "email": "crash@example.net"}})
        assert accepted.status_code == 202, accepted.text + site.log.read_text()[-3000:]
        booking = accepted.json()["id"]
        expected = event_id(booking, ALICE, organizer_copy=True)
        site.eventually(lambda: fake.event(ALICE, expected), "the owner's event did not land")
        assert site.client.get(f"/v1/bookings/{booking}").json()["status"] == "pending"
        inserts_before = [r for r in fake.requests if r[0] == "POST"
                          and re.search(events_path(ALICE), r[1])]
        assert len(inserts_before) == 1

        site.restart_after_kill()

        site.eventually(
            lambda: site.client.get(f"/v1/bookings/{booking}").json()["status"] == "confirmed",
            "the booking was not confirmed after the restart")
        assert [e["id"] for e in live(fake, ALICE)] == [expected]  # one event, the booking's
        inserts = [i for i, r in enumerate(fake.requests)
                   if r[0] == "POST" and re.search(events_path(ALICE), r[1])]
        assert len(inserts) == 2  # the retry met 409 …
        read_back = [r for r in fake.requests[inserts[1]:]
                     if r[0] == "GET" and r[1].endswith(f"/events/{expected}")]
        assert read_back  # … and read the event instead of writing a second one
    finally:
        finish(site)


# ---- 410 in the middle of an incremental listing ----------------------------------------


def test_a_sync_token_gone_mid_listing_relists_the_window(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    day = next_day()
    doomed_at, added_at = slot_at(day, 0), slot_at(day, 1)
    site = Site(tmp_path, fake)
    try:
        site.channels_stored(1)
        site.eventually(lambda: site.free("alice", doomed_at), "the first sync did not happen")
        doomed = fake.insert(ALICE, event_at(doomed_at, "doomed"))
        site.eventually(lambda: not site.free("alice", doomed_at),
                        "the first change did not arrive", within=PROMPT)

        # The next incremental listing: its first page waits a little (so
        # all of the changes below are in it: more than one page of 250),
        # its second page is 410 — Google invalidated the sync token.
        fake.fail(method="GET", path=events_path(ALICE),
                  query=r"^(?=.*syncToken=)(?=.*pageToken=)", status=410,
                  reason="fullSyncRequired",
                  message="Sync token is no longer valid, a full sync is required.")
        fake.fail(method="GET", path=events_path(ALICE),
                  query=r"^(?!.*pageToken=)(?=.*syncToken=)", status=200, delay=5)
        full_before = sum(1 for r in fake.requests
                          if re.search(events_path(ALICE), r[1]) and "timeMin" in r[2])
        fake.delete(ALICE, doomed["id"])
        fake.insert(ALICE, event_at(added_at, "added"))
        fillers = [slot_at(day, 2 + n / 2) for n in range(300)]
        for n, at in enumerate(fillers):
            fake.insert(ALICE, event_at(at, f"filler {n}"))

        site.eventually(lambda: sum(1 for r in fake.requests if re.search(
            events_path(ALICE), r[1]) and "timeMin" in r[2]) > full_before,
            "no full listing followed the 410")
        truth = {e["id"] for e in live(fake, ALICE)}
        site.eventually(lambda: site.cached_sources("alice") == truth,
                        "the cache does not hold Google's events")
        offered = site.starts("alice", day, day + timedelta(days=8))
        assert doomed_at in offered  # deleted: free again
        assert added_at not in offered
        assert not offered & set(fillers)
        assert site.status()["alice"]["state"] == "ok"
        second_pages = [r for r in fake.requests if re.search(events_path(ALICE), r[1])
                        and "syncToken" in r[2] and "pageToken" in r[2]]
        assert second_pages  # the 410 came on a later page, mid-listing
        assert "cursor of alice@acme.test expired: listing the window anew" in \
            site.log.read_text()
    finally:
        finish(site)


# ---- a 429 storm on one account ---------------------------------------------------------


def test_a_throttled_account_slows_alone_and_catches_up(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    day = next_day()
    site = Site(tmp_path, fake, users=("alice", "bob"))
    try:
        site.channels_stored(2)
        for user in USERS:
            site.eventually(lambda user=user: site.free(user, day), f"{user} was not synced")

        fake.fail(path=rf"^/calendar/v3/calendars/{re.escape(BOB)}/", status=429,
                  retry_after=STORM_RETRY_AFTER, times=100_000)
        bob_at, alice_at = slot_at(day, 3), slot_at(day, 4)
        throttled = len(fake.requests)
        fake.insert(BOB, event_at(bob_at, "walk-in"))
        site.eventually(lambda: sum(1 for r in fake.requests[throttled:]
                                    if BOB in r[1] and r[0] == "GET") >= 1,
                        "bob's calendar was not asked", within=PROMPT)
        changed = time.monotonic()
        fake.insert(ALICE, event_at(alice_at, "meeting"))
        # Within less than bob's Retry-After: bob's wait must not be alice's.
        site.eventually(lambda: not site.free("alice", alice_at),
                        "alice's change did not come through the storm",
                        within=STORM_RETRY_AFTER - 2)
        print(f"alice's change during bob's storm: {time.monotonic() - changed:.2f} s")

        site.eventually(lambda: "sync of bob failed" in site.log.read_text(),
                        "bob's sync did not give up on the storm")
        shown = site.status()
        assert shown["bob"]["state"] == "failed", shown["bob"]
        # Google's 429, or the account's cool-down that it started (nothing sent).
        error = shown["bob"]["last_error"] or ""
        assert "429" in error or "throttled" in error, shown["bob"]
        assert shown["alice"]["state"] == "ok", shown["alice"]
        assert site.free("bob", bob_at)  # not seen yet: bob's cache waits for Google

        fake.clear_faults()  # the storm ends
        site.eventually(lambda: not site.free("bob", bob_at), "bob did not catch up")
        site.eventually(lambda: site.status()["bob"]["state"] == "ok",
                        "bob's calendar stayed failed")
    finally:
        finish(site)


# ---- a channel that expires ---------------------------------------------------------------


def test_a_channel_about_to_expire_is_replaced_and_the_new_one_delivers(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    # Google grants 40 s, whatever ttl is asked for; the daemon renews a
    # channel in the last half of its life.
    fake.channel_lifetime = timedelta(seconds=40)
    day = next_day()
    site = Site(tmp_path, fake)
    try:
        site.channels_stored(1)
        (old_id, old), = list(fake.channels.items())
        site.eventually(lambda: site.free("alice", day), "the first sync did not happen")

        # The channel job runs every few minutes; a reload runs it within
        # 10 s.  Ask for it so that it runs inside the renewal margin.
        due = old["expiration"] - timedelta(seconds=20)
        site.eventually(lambda: datetime.now(UTC) >= due - timedelta(seconds=9),
                        "time did not pass", within=45)
        site.daemon.send_signal(signal.SIGHUP)
        site.eventually(lambda: fake.channels[old_id]["stopped"],
                        "the old channel was not stopped", within=30)
        (new_id, new), = [(i, c) for i, c in fake.channels.items() if not c["stopped"]]
        assert new_id != old_id and new["calendar_id"] == ALICE
        assert new["expiration"] > old["expiration"]
        assert site.status()["alice"]["push_channel"]["id"] == new_id  # persisted

        at = slot_at(day, 5)
        delivered = len(fake.deliveries)
        fake.insert(ALICE, event_at(at, "after the renewal"))
        site.eventually(lambda: not site.free("alice", at),
                        "the change did not arrive through the new channel", within=PROMPT)
        assert {d[1]["X-Goog-Channel-ID"] for d in fake.deliveries[delivered:]} == {new_id}
    finally:
        finish(site)
