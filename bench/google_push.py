"""Webhook → slot latency with Google push: a real ``calpool run`` serving
https, its Google person on the Google Calendar fake (TLS on loopback),
push on and polls an hour apart.  ``--changes`` times an event is put into
the person's calendar at a new half hour; each time the clock runs from
the change on the provider until ``GET /v1/event-types/consult/slots`` no
longer offers that half hour (the fake's ``exists`` delivery →
``/hooks/google`` → the marked calendar's incremental ``events.list`` with
its sync token → the cache).  Printed: p50 / p99 / max.

A pushed calendar is synced by a job that runs every 2 s; a change made
right after the previous one showed would always wait out nearly the whole
period.  Each change is therefore made after a random pause of up to
``--spread`` seconds (default 2), as changes on a provider come at any
moment; ``--spread 0`` shows the worst case of that phase.

    PYTHONPATH=. .venv/bin/python bench/google_push.py [--changes 50] [--spread 2]
"""

from __future__ import annotations

import argparse
import random
import signal
import ssl
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.test_google_push import ADMIN, OWNER, TOKEN, start, write_config
from tests.fakes.google_calendar import GoogleCalendarFake
from tests.support.caldav_servers import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--spread", type=float, default=2.0,
                        help="seconds of random pause before each change")
    args = parser.parse_args()
    with GoogleCalendarFake(tls=True) as fake, tempfile.TemporaryDirectory() as folder:
        fake.delegate(ADMIN)
        fake.delegate(OWNER)
        fake.add_calendar(OWNER)
        port = free_port()
        config = write_config(Path(folder), fake, port)  # also trusts the daemon's certificate
        log = Path(folder) / "daemon.log"
        client = httpx.Client(base_url=f"https://127.0.0.1:{port}", timeout=30, trust_env=False,
                              verify=ssl.create_default_context(cafile=fake.ca_file),
                              headers={"Authorization": f"Bearer {TOKEN}"})
        daemon = start(config, log, client)
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
            # The channel counts once the daemon stored it (Google announces
            # it before events.watch has answered).
            while "push channels: 1 opened" not in log.read_text():
                time.sleep(0.2)
            while not offered(day):  # the first sync is done
                time.sleep(0.1)
            asked_before = len(fake.requests)
            latencies = []
            for n in range(args.changes):
                moment = day + timedelta(minutes=30 * n)
                while not offered(moment):
                    time.sleep(0.05)
                time.sleep(random.uniform(0, args.spread))
                changed = time.monotonic()
                fake.insert(OWNER, {
                    "summary": f"walk-in {n}",
                    "start": {"dateTime": moment.isoformat()},
                    "end": {"dateTime": (moment + timedelta(minutes=30)).isoformat()}})
                while offered(moment):
                    time.sleep(0.05)
                latencies.append(time.monotonic() - changed)
            listed = [query for _, path, query, _ in fake.requests[asked_before:]
                      if path.endswith("/events")]
            if not all("syncToken" in q for q in listed):
                print("note: a full listing ran during the bench")
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            print(f"webhook -> slot over {len(latencies)} changes: "
                  f"p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
                  f"max {ordered[-1]:.2f} s")
        finally:
            client.close()  # first: an idle keep-alive connection holds up the shutdown
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)


if __name__ == "__main__":
    main()
