"""``calpool run`` killed with SIGKILL between the reservation and the
provider write, then started again: every booking it had accepted ends
``confirmed``, with exactly one event per calendar on the server.

The rooms' account reaches Radicale through :class:`StallingProxy`, a TCP
proxy written for this test that passes every request through except PUTs,
which it accepts and holds unanswered: the daemon has reserved the booking
and is inside the room's write when it is killed.  Afterwards the proxy
delivers the first held PUT late (a write that reached the server although
its writer died: the retry must not make a second event) and drops the
others (writes that never arrived).
"""

from __future__ import annotations

import hashlib
import html
import os
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
from tests.support.booking_copies import booking_key, event_names
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.config_builder import SiteConfig

TOKEN = "crash-test-token"
CLAIM_HOLD = 3  # seconds: daemon.outbox_claim_hold, so the restarted daemon retries soon
SETTLE_WITHIN = 60.0


class StallingProxy:
    """Forwards HTTP/1.1 requests to ``upstream`` (one upstream connection
    per request) and holds every PUT while ``holding``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.holding = True
        self.held: list[tuple[socket.socket, bytes]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                           if line.lower().startswith("content-length:")), 0)
            while len(pending) < length:
                pending += conn.recv(65536)
            body, pending = pending[:length], pending[length:]
            # One request per upstream connection: read the answer to its end.
            kept = [line for line in lines[1:] if not line.lower().startswith("connection:")]
            raw = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
            raw += body
            with self._lock:
                if lines[0].startswith("PUT ") and self.holding:
                    self.held.append((conn, raw))  # accepted, never answered
                    return
            conn.sendall(self.forward(raw))
            conn.close()  # the answer said "Connection: close"
            return

    def forward(self, raw: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=10) as upstream:
            upstream.sendall(raw)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        return answer

    def release(self) -> int:
        """Stop holding; deliver the first held PUT, drop the rest.
        Returns how many were held."""
        with self._lock:
            self.holding = False
            held, self.held = self.held, []
        for n, (conn, raw) in enumerate(held):
            if n == 0:
                self.forward(raw)
            conn.close()
        return len(held)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Server]:
    server = start_radicale(tmp_path)
    yield server
    server.stop()


def write_config(folder: Path, server: Server, proxy: StallingProxy, listen: int) -> Path:
    for name in ("alice", "room-a", "room-b"):
        server.make_calendar(name)
    home = server.home.replace(server.url, "/")
    path = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", outbox_claim_hold=f"{CLAIM_HOLD}s")
        .http(listen=f"127.0.0.1:{listen}", confirm_within="1s")
        .api_token("desk", sha256=hashlib.sha256(TOKEN.encode()).hexdigest(), scopes=["book"])
        .caldav_account("people", url=server.home)
        .caldav_account("rooms", url=f"http://127.0.0.1:{proxy.port}{home}")
        .calendar("alice", account="people", id="alice/", kind="person")
        .calendar("room-a", account="rooms", id="room-a/", kind="room")
        .calendar("room-b", account="rooms", id="room-b/", kind="room")
        .pool("rooms", members=["room-a", "room-b"], assignment="priority")
        .event_type("consult", title="Consultation with {attendee_name}", duration="30m",
                    owner="alice", pools=["rooms"])
        .write(folder)
    )
    upgraded = subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    return path


def start_daemon(config: Path, log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([str(CALPOOL), "--config", str(config), "run"],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("calpool run did not answer /healthz:\n" + log.read_text())


def event_uids(server: Server, calendar: str) -> list[str]:
    """The events stored in ``calendar``, by a raw calendar-query REPORT:
    calpool's copies by booking (``booking_key``), others by UID."""
    query = (b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
             b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
             b'<c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>')
    status, _, body = server.request("REPORT", f"{server.home}{calendar}/", query,
                                     {"Depth": "1", "Content-Type": "application/xml"})
    assert status == 207, status
    return sorted(event_names(html.unescape(body.decode()), f"{calendar}/"))


def test_bookings_accepted_before_sigkill_are_confirmed_once_after_restart(
        tmp_path: Path, radicale: Server) -> None:
    upstream = radicale.url.removeprefix("http://").rstrip("/").split(":")
    proxy = StallingProxy((upstream[0], int(upstream[1])))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, radicale, proxy, port)
    log = tmp_path / "daemon.log"
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    starts = [f"{day}T{hour}:00:00+00:00" for hour in ("09", "10", "11")]
    client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    first = start_daemon(config, log, url)
    try:
        answers = [client.post("/v1/bookings", headers={"Idempotency-Key": f"k-{n}"},
                               json={"event_type": "consult", "start": start,
                                     "attendee": {"name": f"Guest {n}",
                                                  "email": f"g{n}@example.com"}})
                   for n, start in enumerate(starts)]
        assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
        assert {a.json()["status"] for a in answers} == {"pending"}
        deadline = time.monotonic() + 10
        while len(proxy.held) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert proxy.release() == 3, "every room write was in flight at the kill"
    ids = [answer.json()["id"] for answer in answers]
    uids = sorted(booking_key(booking_id) for booking_id in ids)
    [landed_late] = event_uids(radicale, "room-a")
    assert landed_late in uids

    second = start_daemon(config, log, url)
    try:
        deadline = time.monotonic() + SETTLE_WITHIN
        while True:
            states = [client.get(f"/v1/bookings/{booking_id}").json()["status"]
                      for booking_id in ids]
            if set(states) == {"confirmed"} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert states == ["confirmed"] * 3, log.read_text()[-3000:]
        assert event_uids(radicale, "alice") == uids
        assert event_uids(radicale, "room-a") == uids
        assert event_uids(radicale, "room-b") == []
        # The retry of an answered request replays that answer.
        replay = client.post("/v1/bookings", headers={"Idempotency-Key": "k-0"},
                             json={"event_type": "consult", "start": starts[0],
                                   "attendee": {"name": "Guest 0", "email": "g0@example.com"}})
        assert replay.status_code == 202 and replay.content == answers[0].content
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        second.send_signal(signal.SIGTERM)
        code = second.wait(timeout=30)
        proxy.close()
    assert code == 0
    assert "Traceback" not in log.read_text()
