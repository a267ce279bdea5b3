"""A push notification that reaches a process which does not sync the
calendar (issue 18).

Three ``calpool run`` share one PostgreSQL; their person's calendar lives on
the Google Calendar fake (TLS on loopback), push on, polls an hour apart.
The load balancer of a real setup is played by ``public_url``: every
watch channel points at process 0, *the receiver*, so Google's
notifications reach only that one.  The receiver marks the calendar "sync
requested" in the store and answers at once; whichever process's
sync-requested loop (every :data:`daemon.scheduler.SYNC_REQUESTED_EVERY`)
takes the calendar's sync lease first runs the sync, and the slots of
*another* process (process 2) stop offering the half hour.

- **At rest** nobody holds the lease; the receiver's delivery wakes its own
  sync-requested job (:class:`daemon.scheduler.SyncRequestedJob`), it syncs
  at once, and the change reaches process 2's slots through the database
  (LISTEN/NOTIFY).  The process that synced is recorded from ``leases``.
- **Holder busy**: the test, as a load balancer would, forwards a delivery
  to process 1, whose listing the fake holds for :data:`SLOW_LISTING`; while
  process 1 holds the lease, a change on the provider is announced to the
  receiver.  The receiver's job finds the lease taken and skips; process 1,
  after its round, sees the outstanding mark and runs another round
  (:meth:`engine.services.sync.SyncService._sync_held`).  The mark is never
  lost and ends served.

Every wait ends once its condition holds, within :data:`WITHIN`.
``bench/push_handover.py`` prints the p50 / p99 of these latencies.
"""

from __future__ import annotations

import hashlib
import json
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.fakes.google_calendar import GoogleCalendarFake
from tests.support.caldav_servers import free_port
from tests.support.postgres import (  # noqa: F401 - fixture used by name
    PostgresServer,
    database_name,
    postgres_server,
)

TOKEN = "push-handover-token"
OWNER = "alice@acme.test"
ADMIN = "calpool-admin@acme.test"
LEASE = "sync:alice"
WITHIN = 60.0  # seconds: a generous bound; a change takes about a second
SLOW_LISTING = 1.5  # seconds the fake holds the listing of the holder-busy case


def config_text(fake: GoogleCalendarFake, database: str, port: int, receiver: int,
                key_file: Path, tls: tuple[str, str]) -> str:
    cert, private_key = tls
    return f"""\
[daemon]
database = "{database}"
log_level = "info"

[http]
listen = "127.0.0.1:{port}"
public_url = "https://127.0.0.1:{receiver}"
tls_cert_file = "{cert}"
tls_key_file = "{private_key}"

[sync]
push = true
poll_interval = "1h"
safety_poll = "1h"
lease_ttl = "10s"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["slots"]

[accounts.work]
provider = "google"
service_account_file = "{key_file}"
subject = "{ADMIN}"
api_url = "{fake.api_url}"
ca_file = "{fake.ca_file}"

[calendars.alice]
account = "work"
id = "{OWNER}"
subject = "{OWNER}"
kind = "person"

[event_types.consult]
title = "Consultation"
duration = "30m"
owner = "alice"
"""


@dataclass
class Change:
    """One change made on the provider and how it reached process 2's slots."""

    seconds: float
    synced_by: set[int]  # indexes of the processes seen holding the sync lease meanwhile

    @property
    def handed_over(self) -> bool:
        """Another process than the receiver (index 0) synced it."""
        return bool(self.synced_by) and 0 not in self.synced_by


@dataclass
class HandoverSite:
    """The fake, PostgreSQL and ``processes`` daemons sharing one database."""

    fake: GoogleCalendarFake
    postgres: PostgresServer
    folder: Path
    processes: int = 3
    database_url: str = ""
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)
    base: datetime = field(default_factory=lambda: (datetime.now(UTC) + timedelta(days=2))
                           .replace(hour=0, minute=0, second=0, microsecond=0))
    changes: int = 0
    forwarded: int = 0

    def start(self) -> None:
        self.fake.delegate(ADMIN)
        self.fake.delegate(OWNER)
        self.fake.add_calendar(OWNER)
        self.fake.receiver_ca_file = self.fake.ca_file  # the fake checks the daemons' certificate
        self.database_url = self.postgres.create_database()
        key = self.folder / "service-account.json"
        key.write_text(json.dumps(self.fake.service_account_info()), encoding="utf-8")
        tls = self.fake.issue_cert("127.0.0.1")
        ports = [free_port() for _ in range(self.processes)]
        texts = [config_text(self.fake, self.database_url, port, ports[0], key, tls)
                 for port in ports]
        paths = []
        for index, text in enumerate(texts):
            path = self.folder / f"calpool-{index}.toml"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        upgraded = subprocess.run([str(CALPOOL), "--config", str(paths[0]), "db", "upgrade"],
                                  capture_output=True, text=True, env=environment(), timeout=120)
        assert upgraded.returncode == 0, upgraded.stderr
        verify = ssl.create_default_context(cafile=self.fake.ca_file)
        for index, (path, port) in enumerate(zip(paths, ports, strict=True)):
            with self.log(index).open("ab") as out:
                self.daemons.append(subprocess.Popen(
                    [str(CALPOOL), "--config", str(path), "run"],
                    stdout=out, stderr=subprocess.STDOUT, env=environment()))
            self.clients.append(httpx.Client(
                base_url=f"https://127.0.0.1:{port}", verify=verify, trust_env=False,
                timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}))
        self.wait(lambda: all(self.healthy(n) for n in range(self.processes)), "the daemons")
        self.wait(lambda: any(c["calendar_id"] == OWNER and not c["stopped"]
                              for c in self.fake.channels.values()), "a watch channel")
        self.wait(lambda: "push channels: 1 opened" in self.logs(), "the channel stored")
        self.wait(lambda: self.free(self.base), "the first sync")

    def stop(self) -> list[int | None]:
        # Closed first: a keep-alive connection left open holds a daemon's
        # graceful shutdown until it times out.
        for client in self.clients:
            client.close()
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for daemon in self.daemons:
            try:
                codes.append(daemon.wait(timeout=60))
            except subprocess.TimeoutExpired:
                daemon.kill()
                codes.append(None)
        if self.database_url:
            self.postgres.drop_database(database_name(self.database_url))
        return codes

    def log(self, index: int) -> Path:
        return self.folder / f"daemon-{index}.log"

    def logs(self) -> str:
        return "\n".join(self.log(n).read_text(errors="replace") for n in range(len(self.daemons)))

    def healthy(self, index: int) -> bool:
        assert self.daemons[index].poll() is None, self.logs()[-3000:]
        try:
            return self.clients[index].get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def free(self, at: datetime) -> bool:
        """Whether the last process (process 2 of three) still offers ``at``."""
        answer = self.clients[-1].get("/v1/event-types/consult/slots", params={
            "start": at.isoformat(), "end": (at + timedelta(minutes=1)).isoformat()})
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["slots"])

    def wait(self, condition: object, what: str, within: float = WITHIN) -> float:
        assert callable(condition)
        began = time.monotonic()
        while not condition():
            assert time.monotonic() - began < within, f"{what}:\n{self.logs()[-4000:]}"
            time.sleep(0.01)
        return time.monotonic() - began

    def holder(self) -> int | None:
        """The index of the process holding the calendar's sync lease now."""
        with self.postgres.connect(database_name(self.database_url)) as connection:
            row = connection.execute(
                "SELECT holder FROM leases WHERE name = %s AND expires_at > now()", (LEASE,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        pid = int(str(row[0]).split(":")[1])
        return next(n for n, daemon in enumerate(self.daemons) if daemon.pid == pid)

    def outstanding(self) -> bool:
        with self.postgres.connect(database_name(self.database_url)) as connection:
            row = connection.execute(
                "SELECT s.requested > s.served FROM sync_requests s "
                "JOIN calendars c ON c.id = s.calendar_id WHERE c.key = 'alice'"
            ).fetchone()
        return bool(row and row[0])

    def insert_busy(self) -> datetime:
        self.changes += 1
        at = self.base + timedelta(hours=self.changes)
        assert self.free(at)
        self.fake.insert(OWNER, {"summary": f"busy {self.changes}",
                                 "start": {"dateTime": at.isoformat()},
                                 "end": {"dateTime": (at + timedelta(minutes=30)).isoformat()}})
        return at

    def until_taken(self, at: datetime, holders: set[int]) -> bool:
        if (held := self.holder()) is not None:
            holders.add(held)
        return not self.free(at)

    def change_at_rest(self) -> Change:
        started = time.monotonic()
        at = self.insert_busy()
        holders: set[int] = set()
        self.wait(lambda: self.until_taken(at, holders), "the change in the slots")
        return Change(time.monotonic() - started, holders)

    def forward(self, index: int) -> None:
        """What a load balancer does with Google's next delivery: hand it to
        process ``index`` (the fake's last delivery, under a new message number)."""
        address, headers, body = self.fake.push.deliveries[-1]
        assert address.startswith(f"{self.clients[0].base_url}".rstrip("/"))
        self.forwarded += 1
        headers = {**headers, "X-Goog-Resource-State": "exists",
                   "X-Goog-Message-Number": str(10**6 + self.forwarded)}
        answer = self.clients[index].post("/hooks/google", content=body, headers=headers)
        assert answer.status_code == 202, answer.text

    def change_while_the_holder_is_busy(self) -> Change:
        """A delivery forwarded to process 1, whose listing the fake holds for
        :data:`SLOW_LISTING`; while process 1 holds the lease, a change on
        the provider, which Google announces to the receiver: timed."""
        holding = min(1, len(self.daemons) - 1)
        self.fake.fail(method="GET", path=r"/events$", status=200, delay=SLOW_LISTING)
        self.forward(holding)
        holders: set[int] = set()

        def someone_holds() -> bool:
            held = self.holder()
            if held is not None:
                holders.add(held)
            return held is not None

        self.wait(someone_holds, "a process holding the lease for the forwarded delivery")
        started = time.monotonic()
        at = self.insert_busy()
        self.wait(lambda: self.until_taken(at, holders), "the change in the slots")
        seconds = time.monotonic() - started
        self.wait(lambda: not self.outstanding(), "the mark served")
        return Change(seconds, holders)


@pytest.fixture
def site(tmp_path: Path, postgres_server: PostgresServer  # noqa: F811
         ) -> Iterator[HandoverSite]:
    with GoogleCalendarFake(tls=True) as fake:
        made = HandoverSite(fake, postgres_server, tmp_path)
        try:
            made.start()
            yield made
        except BaseException:
            print(made.logs()[-6000:])
            raise
        finally:
            codes = made.stop()
    assert codes == [0] * len(codes), made.logs()[-4000:]
    assert "Traceback" not in made.logs()


def test_a_notification_to_a_process_that_does_not_sync_reaches_every_processs_slots(
        site: HandoverSite) -> None:
    # At rest the receiver's own job, woken by the delivery, syncs at once;
    # another process's slots show the change.
    at_rest = [site.change_at_rest() for _ in range(3)]
    # Holder busy: process 1 holds the lease when the receiver gets the
    # notification.  Its own delivery wakes process 1 at once, so it nearly
    # always takes the lease before another process's tick does; go on until
    # it did (each wait above is bounded).
    busy: list[Change] = []
    while not any(change.handed_over for change in busy):
        assert len(busy) < 6, [vars(change) for change in busy]
        busy.append(site.change_while_the_holder_is_busy())
    statuses = site.fake.push.delivery_statuses
    assert statuses and all(s is not None and 200 <= s < 300 for s in statuses[1:])
    times = [change.seconds for change in at_rest + busy]
    print(f"\npush handover: at rest {[round(c.seconds, 2) for c in at_rest]} s (synced by "
          f"{[sorted(c.synced_by) for c in at_rest]}); holder busy "
          f"{[round(c.seconds, 2) for c in busy]} s (synced by "
          f"{[sorted(c.synced_by) for c in busy]}); max {max(times):.2f} s")
