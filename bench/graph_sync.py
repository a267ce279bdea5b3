"""Syncing Microsoft 365 mailboxes from the Graph fake through the
Microsoft connector (msal + requests over TLS on loopback).

``--calendars`` mailboxes of ``--events`` single events each (spread over
the 90-day window, a tenth of them tentative or free) are read with one
full listing each (a delta round: ``Prefer: odata.maxpagesize=100``
pages to the deltaLink), then one incremental pass over all of them after
a single change in one mailbox.  The calls run ``--workers`` at a time, as
the daemon's sync pool does.  Printed: wall time, events/s, requests.

    PYTHONPATH=. .venv/bin/python bench/graph_sync.py [--calendars 100] [--events 200]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.microsoft import MicrosoftConnector
from engine.core.model import Interval
from engine.ports import CalendarRef
from tests.contract.graph_driver import graph_account
from tests.fakes.graph import GraphFake

START = datetime(2027, 3, 1, tzinfo=UTC)
WINDOW = Interval(START, START + timedelta(days=90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calendars", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with GraphFake() as fake:
        calendars = [CalendarRef(f"user{n}@contoso.example", "Europe/Berlin")
                     for n in range(args.calendars)]
        for calendar in calendars:
            fake.add_mailbox(calendar.id, timezone=calendar.timezone)
            for n in range(args.events):
                start = START + timedelta(hours=10 * n + 1)
                fake.create(calendar.id, {
                    "subject": f"meeting {n}",
                    "showAs": ("tentative", "free", "busy")[min(n % 10, 2)],
                    "start": {"dateTime": start.replace(tzinfo=None).isoformat(),
                              "timeZone": "UTC"},
                    "end": {"dateTime": (start + timedelta(minutes=45)).replace(tzinfo=None)
                            .isoformat(), "timeZone": "UTC"}})
        account = graph_account(fake)
        connector = MicrosoftConnector(replace(account, page_size=100))
        before = len(fake.requests)
        began = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            listings = list(pool.map(lambda c: connector.list_window(c, WINDOW), calendars))
        full = time.perf_counter() - began
        events = sum(len(v) for listing in listings for v in listing.objects.values())
        full_requests = len(fake.requests) - before
        fake.create(calendars[0].id, {
            "subject": "the one change",
            "start": {"dateTime": "2027-03-02T07:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-02T08:00:00", "timeZone": "UTC"}})
        before = len(fake.requests)
        began = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            changes = list(pool.map(lambda pair: connector.changes_since(
                pair[0], pair[1].cursor, WINDOW), zip(calendars, listings, strict=True)))
        incremental = time.perf_counter() - began
        changed = sum(len(c.objects) for c in changes)
        print(f"full sync: {args.calendars} calendars x {args.events} events = {events} events "
              f"in {full:.2f} s ({events / full:.0f} events/s, {full_requests} requests "
              f"incl. token)")
        print(f"incremental pass: {changed} changed object(s) over {args.calendars} calendars "
              f"in {incremental:.2f} s ({len(fake.requests) - before} requests)")
        connector.close()


if __name__ == "__main__":
    main()
