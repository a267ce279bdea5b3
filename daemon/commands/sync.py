"""``calpool sync``: one sync pass over the calendars (or some), then exit.

Without ``--full`` or named calendars, each account is first asked which
calendars changed at all (:meth:`SyncService.confirm_unchanged`); only
those are asked for their changes.

Ctrl-C (SIGINT) stops the pass: calendars not started yet are left as they
were, those in flight finish (each commits its batch whole or not at all),
and the command exits 130 naming how many were synced.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.logs import configure
from daemon.progress import SyncProgress
from engine.services.sync import SyncReport

# Calendars are synced a few at a time: providers answer slowly, and the
# store serializes the short write transactions anyway.
PARALLEL_SYNCS = 4

EXIT_INTERRUPTED = 130


def run(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    keys = list(dict.fromkeys(args.calendar)) if args.calendar else list(config.calendars)
    unknown = [key for key in keys if key not in config.calendars]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise CommandFailed(f"unknown calendar {names}: see [calendars] in the config", 2)
    # Each calendar's outcome is printed below; log records would only repeat
    # it (with tracebacks), unless the operator asked for debug output.
    quiet = "debug" if config.daemon.log_level == "debug" else "critical"
    configure(config.daemon.log_format, quiet, invocation.err)
    app = open_app(invocation, load_cache=False)
    reports: list[SyncReport] = []
    interrupted = False
    title = "full sync" if args.full else "sync"
    try:
        with SyncProgress(invocation.err, len(keys), title=title) as progress, \
                ThreadPoolExecutor(max_workers=PARALLEL_SYNCS) as pool:
            left = keys
            if not args.full and not args.calendar:
                # A pass over every calendar first asks each account which
                # calendars changed at all, in one request (CalDAV: a
                # PROPFIND of the sync tokens), and records the others in one
                # transaction.  For a few named calendars that request would
                # cost more than it saves: they are asked one by one.
                unchanged, left = app.sync.confirm_unchanged(keys)
                for report in unchanged:
                    progress.print(describe(report), invocation.out)
                    progress.add(report, 0.0)
                reports.extend(unchanged)
            futures = [pool.submit(_timed, app.sync.sync_calendar, key, args.full)
                       for key in left]
            reported: set[Future[tuple[SyncReport, float]]] = set()
            try:
                for future in as_completed(futures):
                    _report(future, reports, progress, invocation)
                    reported.add(future)
            except KeyboardInterrupt:
                interrupted = True
                # A second Ctrl-C must not break off the batches in flight.
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    # Every calendar that ran (in flight, or done but not yet
                    # told when the Ctrl-C came) is reported; the rest never starts.
                    ran = [f for f in futures if f not in reported and not f.cancel()]
                    for future in as_completed(ran):
                        _report(future, reports, progress, invocation)
                finally:
                    signal.signal(signal.SIGINT, previous)
    finally:
        app.close()
    failed = sorted(report.calendar for report in reports if report.failed)
    if interrupted:
        synced = sum(1 for report in reports if report.outcome == "synced")
        print(f"calpool: interrupted: {synced} of {len(keys)} calendars synced, "
              f"{len(keys) - len(reports)} not started and left as they were", file=invocation.err)
        return EXIT_INTERRUPTED
    if failed:
        raise CommandFailed(f"sync failed for {len(failed)} calendar(s): {', '.join(failed)}")
    return 0


def _timed(sync: Callable[..., SyncReport], key: str, full: bool) -> tuple[SyncReport, float]:
    began = time.perf_counter()
    report = sync(key, full=full)
    return report, time.perf_counter() - began


def _report(future: Future[tuple[SyncReport, float]], reports: list[SyncReport],
            progress: SyncProgress, invocation: Invocation) -> None:
    if future.cancelled():
        return
    report, seconds = future.result()
    reports.append(report)
    progress.print(describe(report), invocation.out)
    progress.add(report, seconds)


def describe(report: SyncReport) -> str:
    if report.outcome == "skipped":
        return f"{report.calendar}: skipped, another process is syncing it"
    if report.failed:
        return f"{report.calendar}: failed: {report.error}"
    kind = "full listing" if report.full else "changes"
    line = f"{report.calendar}: synced ({kind}), {report.changed} changed, {report.removed} removed"
    if report.unreadable:  # busy time calpool could not read: never only in a debug log
        line += f", {report.unreadable} unreadable (e.g. {report.last_unreadable})"
    return line
