"""Notification → slot latency with Microsoft 365 push: a real ``calpool
run`` serving https, its M365 calendars on the Graph fake (TLS on
loopback), push on and polls an hour apart.  ``--changes`` times a
meeting is put into both room mailboxes of the pool at a new half hour;
each time the clock runs from the change on the provider until
``GET /v1/event-types/consult/slots`` no longer offers that half hour
(Graph's notification → ``/hooks/microsoft`` → the marked calendar's
delta pass → the cache).  Printed: p50 / p99 / max.

    PYTHONPATH=. .venv/bin/python bench/graph_push.py [--changes 50]
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.test_microsoft_booking import (
    OWNER,
    ROOMS,
    SECRET_ENV,
    TOKEN,
    start_tls_daemon,
    write_config,
)
from tests.fakes.graph import GraphFake
from tests.support.caldav_servers import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    with GraphFake() as fake, tempfile.TemporaryDirectory() as folder:
        fake.add_mailbox(OWNER, timezone="Europe/Berlin")
        for address in ROOMS.values():
            fake.add_room(address)
        fake.receiver_ca_file = fake.ca_file
        os.environ[SECRET_ENV] = fake.client_secret
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        config = write_config(Path(folder), fake, port, tls=fake.issue_cert("127.0.0.1"))
        log = Path(folder) / "daemon.log"
        daemon = start_tls_daemon(config, log, url, fake.ca_file)
        client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                              verify=ssl.create_default_context(cafile=fake.ca_file),
                              headers={"Authorization": f"Bearer {TOKEN}"})
        day = (datetime.now(UTC) + timedelta(days=3)).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)

        def offered(moment: datetime) -> bool:
            answer = client.get("/v1/event-types/consult/slots", params={
                "start": day.isoformat(), "end": (day + timedelta(days=2)).isoformat(),
                "timezone": "UTC"})
            answer.raise_for_status()
            return any(datetime.fromisoformat(s["start"]) == moment
                       for s in answer.json()["slots"])

        try:
            while sum(not s["deleted"] for s in fake.subscriptions.values()) < 1 + len(ROOMS):
                time.sleep(0.2)
            latencies = []
            for n in range(args.changes):
                moment = day + timedelta(minutes=30 * n)
                while not offered(moment):
                    time.sleep(0.05)
                changed = time.monotonic()
                for address in ROOMS.values():
                    fake.create(address, {
                        "subject": f"walk-in {n}", "showAs": "busy",
                        "start": {"dateTime": moment.replace(tzinfo=None).isoformat(),
                                  "timeZone": "UTC"},
                        "end": {"dateTime": (moment + timedelta(minutes=30))
                                .replace(tzinfo=None).isoformat(), "timeZone": "UTC"}})
                while offered(moment):
                    time.sleep(0.05)
                latencies.append(time.monotonic() - changed)
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            print(f"notification -> slot over {len(latencies)} changes: "
                  f"p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
                  f"max {ordered[-1]:.2f} s")
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            client.close()


if __name__ == "__main__":
    main()
