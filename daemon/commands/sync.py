"""``calpool sync``: one sync pass over the calendars (or some), then exit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TextIO

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.logs import configure
from engine.services.sync import SyncReport

# Calendars are synced a few at a time: providers answer slowly, and the
# store serializes the short write transactions anyway.
PARALLEL_SYNCS = 4


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
    progress = _Progress(invocation.err, len(keys))
    reports: list[SyncReport] = []
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL_SYNCS) as pool:
            futures = [pool.submit(app.sync.sync_calendar, key, full=args.full) for key in keys]
            for future in as_completed(futures):
                report = future.result()
                reports.append(report)
                progress.clear()
                print(describe(report), file=invocation.out, flush=True)
                progress.advance()
    finally:
        progress.clear()
        app.close()
    failed = sorted(report.calendar for report in reports if report.failed)
    if failed:
        raise CommandFailed(f"sync failed for {len(failed)} calendar(s): {', '.join(failed)}")
    return 0


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


class _Progress:
    """A one-line progress bar on a terminal; nothing when output is piped."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._total = total
        self._done = 0
        self._active = stream.isatty() and total > 1
        self._draw()

    def advance(self) -> None:
        self._done += 1
        self._draw()

    def clear(self) -> None:
        if self._active:
            self._stream.write("\r" + " " * (self.WIDTH + 20) + "\r")
            self._stream.flush()

    def _draw(self) -> None:
        if not self._active:
            return
        filled = self.WIDTH * self._done // self._total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._stream.write(f"\r[{bar}] {self._done}/{self._total}")
        self._stream.flush()
