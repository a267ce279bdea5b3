"""``calpool run`` with TLS on loopback and push from the Google Calendar
fake: the daemon opens a watch channel per calendar at its https
``public_url``, the fake announces each (``sync``) and then POSTs
``exists`` to ``/hooks/google`` after a change made on the provider, and
the change reaches the slots through that webhook alone (polls are an
hour apart) — asserted eventually, with a generous bound.  A delivery
with a wrong channel token is refused and syncs nothing.  On shutdown the
channels are stopped.

``CALPOOL_GOOGLE_PUSH_CHANGES`` sets how many changes are timed (default
10); the note's webhook → slot figures come from a run with 50.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.fakes.google_calendar import GoogleCalendarFake
from tests.support import sites
from tests.support.caldav_servers import free_port

TOKEN = "google-push-token"
OWNER = "alice@acme.test"
ADMIN = "calpool-admin@acme.test"
WITHIN = 30.0  # seconds a change may take to reach the slots (it takes about 2)


@pytest.fixture
def fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake(tls=True) as running:
        running.delegate(ADMIN)
        running.delegate(OWNER)
        running.add_calendar(OWNER)
        yield running


def write_config(folder: Path, fake: GoogleCalendarFake, port: int) -> Path:
    key = folder / "service-account.json"
    key.write_text(json.dumps(fake.service_account_info(
        client_email="calpool@acme-proj.iam.gserviceaccount.com")), encoding="utf-8")
    cert, private_key = fake.issue_cert("127.0.0.1")  # the daemon's, from the fake's test CA
    fake.receiver_ca_file = fake.ca_file  # the fake verifies the daemon's certificate
    text = f"""\
[daemon]
database = "sqlite:///calpool.db"

[http]
listen = "127.0.0.1:{port}"
public_url = "https://127.0.0.1:{port}"
tls_cert_file = "{cert}"
tls_key_file = "{private_key}"

[sync]
push = true
poll_interval = "1h"
safety_poll = "1h"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["slots"]

[accounts.work]
provider = "google"
service_account_file = "{key}"
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
    path = sites.write_config(folder, text)
    upgraded = subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    return path


def start(config: Path, log: Path, client: httpx.Client) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([str(CALPOOL), "--config", str(config), "run"],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if client.get("/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("calpool run did not answer /healthz:\n" + log.read_text())


def wait_for(check: object, what: str, log: Path, within: float = WITHIN) -> None:
    assert callable(check)
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def test_a_change_on_google_reaches_the_slots_through_the_webhook(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    port = free_port()
    config = write_config(tmp_path, fake, port)
    log = tmp_path / "daemon.log"
    client = httpx.Client(base_url=f"https://127.0.0.1:{port}",
                          verify=ssl.create_default_context(cafile=fake.ca_file),
                          trust_env=False, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start(config, log, client)
    base = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

    def free(at: datetime) -> bool:
        answer = client.get("/v1/event-types/consult/slots", params={
            "start": at.isoformat(), "end": (at + timedelta(minutes=1)).isoformat()})
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["slots"])

    try:
        wait_for(lambda: any(c["calendar_id"] == OWNER and not c["stopped"]
                             for c in fake.channels.values()), "no channel opened", log)
        # Google announces the channel (``sync``) before events.watch has
        # answered, so before calpool has stored it: that one delivery may be
        # refused; the channel counts once stored.
        wait_for(lambda: "push channels: 1 opened" in log.read_text(), "no channel stored", log)
        announced = len(fake.push.delivery_statuses)
        wait_for(lambda: free(base), "the first sync did not happen", log)

        # A delivery with the wrong token: refused, nothing synced.
        (channel_id, channel), = [(i, c) for i, c in fake.channels.items() if not c["stopped"]]
        lists_before = sum(1 for r in fake.requests if r[1].endswith("/events"))
        refused = client.post("/hooks/google", headers={
            "X-Goog-Channel-ID": channel_id, "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-State": "exists", "X-Goog-Channel-Token": "not-the-token",
            "X-Goog-Message-Number": "999"})
        assert refused.status_code == 401, refused.text

        latencies = []
        for n in range(int(os.environ.get("CALPOOL_GOOGLE_PUSH_CHANGES", "10"))):
            at = base + timedelta(hours=n)
            assert free(at)
            started = time.monotonic()
            fake.insert(OWNER, {"summary": f"busy {n}", "start": {"dateTime": at.isoformat()},
                                "end": {"dateTime": (at + timedelta(minutes=30)).isoformat()}})
            wait_for(lambda at=at: not free(at), f"change {n} did not reach the slots", log)
            latencies.append(time.monotonic() - started)
        listed = [r for r in fake.requests if r[1].endswith("/events")]
        assert all("syncToken" in q for _, _, q, _ in listed[lists_before:])  # incremental only
        statuses = fake.push.delivery_statuses[announced:]
        assert statuses and all(s is not None and 200 <= s < 300 for s in statuses)
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        print(f"webhook → slot latency over {len(latencies)} changes: "
              f"p50 {statistics.median(latencies):.3f}s p99 {cuts[98]:.3f}s")
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert all(c["stopped"] for c in fake.channels.values())  # stopped on shutdown
