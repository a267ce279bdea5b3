"""Google connector benchmark against the local Calendar fake (through
googleapiclient and google-auth, as in production).

``--calendars`` users' calendars of ``--per-calendar`` events (one in ten a
weekly series, read as instances with ``singleEvents=true``) are seeded on
the fake, then listed by one :class:`GoogleConnector`: the full sync of
every calendar (sequentially and with 8 threads, as ``calpool sync`` runs
calendars in parallel), an incremental pass over all calendars after one
event of one calendar moved, and the free/busy of all calendars in batches
of 50.  The fake runs in this process, so its own work is in the figures.

    .venv/bin/python bench/google_sync.py [--calendars 100] [--per-calendar 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.google import GoogleAccount, GoogleConnector
from engine.core.model import Interval
from engine.ports import CalendarRef
from tests.fakes.google_calendar import GoogleCalendarFake

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))


def seed(fake: GoogleCalendarFake, calendars: int, per_calendar: int) -> list[CalendarRef]:
    refs = []
    for c in range(calendars):
        user = f"user-{c}@acme.test"
        fake.add_calendar(user, timezone="Europe/Berlin")
        fake.delegate(user)
        for n in range(per_calendar):
            start = WINDOW.start + timedelta(hours=7 * n + c % 5)
            event = {"summary": f"e{n}",
                     "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
                     "end": {"dateTime": (start + timedelta(minutes=45)).isoformat(),
                             "timeZone": "Europe/Berlin"}}
            if n % 10 == 0:
                event["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=6"]
            fake.insert(user, event)
        refs.append(CalendarRef(user, "Europe/Berlin", user))
    return refs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--per-calendar", type=int, default=200)
    args = parser.parse_args()
    with GoogleCalendarFake() as fake:
        fake.delegate("admin@acme.test")
        started = time.perf_counter()
        refs = seed(fake, args.calendars, args.per_calendar)
        print(f"seeded {args.calendars} × {args.per_calendar} events in "
              f"{time.perf_counter() - started:.1f}s")
        connector = GoogleConnector(GoogleAccount(
            service_account_info=fake.service_account_info(client_email="calpool@acme-proj"
                                                           ".iam.gserviceaccount.com"),
            subject="admin@acme.test", api_url=fake.api_url))
        for ref in refs:  # log every subject in once, outside the timings
            connector.free_busy([ref], Interval(WINDOW.start, WINDOW.start + timedelta(hours=1)))
            connector.list_window(ref, Interval(WINDOW.start, WINDOW.start))

        started = time.perf_counter()
        cursors = {ref.id: connector.list_window(ref, WINDOW) for ref in refs}
        sequential = time.perf_counter() - started
        instances = sum(len(e) for c in cursors.values() for e in c.objects.values())
        print(f"full sync, sequential: {sequential:.2f}s for {instances} instances "
              f"({instances / sequential:.0f} instances/s)")
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            listed = dict(zip([r.id for r in refs],
                              pool.map(lambda r: connector.list_window(r, WINDOW), refs),
                              strict=True))
        print(f"full sync, 8 threads: {time.perf_counter() - started:.2f}s")

        moved = fake.events(refs[0].id)[1]
        fake.patch(refs[0].id, moved["id"], {"summary": "moved"})
        started = time.perf_counter()
        changed = {ref.id: connector.changes_since(ref, listed[ref.id].cursor, WINDOW)
                   for ref in refs}
        incremental = time.perf_counter() - started
        count = sum(len(c.objects) for c in changed.values())
        print(f"incremental pass over {len(refs)} calendars after one change: "
              f"{incremental:.2f}s ({count} object changed)")
        started = time.perf_counter()
        answer = connector.free_busy(refs, WINDOW)
        print(f"free/busy of {len(refs)} calendars over {WINDOW.duration.days} days: "
              f"{time.perf_counter() - started:.2f}s "
              f"({sum(len(b) for b in answer.busy.values())} busy spans, {len(answer.errors)} "
              "errors)")


if __name__ == "__main__":
    main()
