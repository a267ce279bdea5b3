"""A push notification delivered to a process that does not sync the
calendar: change → slot latency with 1 process (the baseline: the receiver
syncs itself) and with 3 ``calpool run`` on one PostgreSQL, where Google's
notifications reach only process 0 (``public_url``) and the slots are asked
of process 2 (the harness is :class:`tests.e2e.test_push_handover.HandoverSite`).

- at rest: nobody holds the calendar's sync lease when the mark lands; the
  receiver's sync-requested job, woken by the delivery, syncs at once;
- holder busy: a delivery forwarded to process 1 (as a load balancer would)
  makes it take the lease, and the fake holds its listing for
  ``SLOW_LISTING`` seconds; the change's notification then reaches the
  receiver, whose job finds the lease taken; the holder runs one more round
  after its own.  The figure includes the slow listing.

The issue's bound is 2 × the loop (``SYNC_REQUESTED_EVERY``).  Printed per
case: p50 / p99 / max and how many changes another process than the
receiver synced.

    PYTHONPATH=. .venv/bin/python bench/push_handover.py [--changes 50] [--busy 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.scheduler import SYNC_REQUESTED_EVERY
from tests.e2e.test_push_handover import SLOW_LISTING, Change, HandoverSite
from tests.fakes.google_calendar import GoogleCalendarFake
from tests.support.postgres import PostgresServer, start_postgres


def summary(changes: list[Change]) -> str:
    times = sorted(change.seconds for change in changes)
    cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else None
    p99 = cuts[98] if cuts else times[0]
    handed = sum(change.handed_over for change in changes)
    return (f"p50 {statistics.median(times):6.3f} s  p99 {p99:6.3f} s  max {times[-1]:6.3f} s"
            f"  ({handed}/{len(changes)} synced by another process than the receiver)")


def one_round(postgres: PostgresServer, processes: int, args: argparse.Namespace
              ) -> tuple[list[Change], list[Change]]:
    with GoogleCalendarFake(tls=True) as fake, tempfile.TemporaryDirectory() as folder:
        site = HandoverSite(fake, postgres, Path(folder), processes=processes)
        try:
            site.start()
            at_rest = [site.change_at_rest() for _ in range(args.changes)]
            busy = [site.change_while_the_holder_is_busy() for _ in range(args.busy)]
        finally:
            codes = site.stop()
        assert codes == [0] * processes, site.logs()[-3000:]
        return at_rest, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--busy", type=int, default=10)
    args = parser.parse_args()
    with start_postgres() as postgres:
        figures = {n: one_round(postgres, n, args) for n in (1, 3)}
    loop = SYNC_REQUESTED_EVERY.total_seconds()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"sync-requested loop every {loop:.0f} s (bound 2 × loop = {2 * loop:.0f} s); "
          f"slow listing {SLOW_LISTING} s in the holder-busy case")
    for n, (at_rest, busy) in figures.items():
        label = "1 process  (baseline)" if n == 1 else f"{n} processes"
        print(f"  {label}: at rest     {summary(at_rest)}")
        print(f"  {label}: holder busy {summary(busy)}")


if __name__ == "__main__":
    main()
