"""What a run of syncs over many calendars did so far: the figures of a
progress display (calendars done of the total, events, rate, time left) and
of the summary line of a poll cycle.

Pure bookkeeping: the caller says how many seconds have passed, so the
figures are the same in a test as on a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.services.sync import SyncReport


@dataclass
class SyncTally:
    """Reports of syncs, counted as they come.  ``total`` is how many
    calendars the run will sync (0: not known, no time left is worked out)."""

    total: int = 0
    done: int = 0
    synced: int = 0
    changed: int = 0
    """Calendars whose sync brought a change (or a full listing)."""
    failed: int = 0
    leased_elsewhere: int = 0
    events: int = 0
    """Objects changed or removed, summed over the syncs."""
    unreadable: int = 0
    """Objects fetched but not readable (skipped), summed over the syncs."""
    sync_seconds: float = 0.0
    """Time spent in the syncs themselves, summed (they may overlap)."""
    failures: list[str] = field(default_factory=list)
    synced_calendars: set[str] = field(default_factory=set)
    """The calendars among ``synced``: a poll cycle may sync one twice (its
    phase came round before the cycle's last calendar was polled)."""
    changed_calendars: set[str] = field(default_factory=set)

    def add(self, report: SyncReport, seconds: float = 0.0) -> None:
        self.done += 1
        self.sync_seconds += seconds
        if report.failed:
            self.failed += 1
            self.failures.append(report.calendar)
        elif report.outcome == "skipped":
            self.leased_elsewhere += 1
        else:
            self.synced += 1
            self.synced_calendars.add(report.calendar)
            self.events += report.changed + report.removed
            self.unreadable += report.unreadable
            if report.full or report.changed or report.removed:
                self.changed += 1
                self.changed_calendars.add(report.calendar)

    def rate(self, elapsed: float) -> float:
        """Events per second over ``elapsed`` seconds (0 before any time passed)."""
        return self.events / elapsed if elapsed > 0 else 0.0

    def eta(self, elapsed: float) -> float | None:
        """Seconds left at the pace so far, by calendars; ``None`` when the
        total is unknown or nothing is done yet."""
        if self.total <= 0 or self.done == 0 or elapsed <= 0:
            return None
        return max(0.0, elapsed / self.done * (self.total - self.done))

    def progress_line(self, elapsed: float) -> str:
        """One plain line for a log or a pipe."""
        total = f"/{self.total}" if self.total else ""
        eta = self.eta(elapsed)
        left = "" if eta is None else f", about {eta:.0f} s left"
        return (f"{self.done}{total} calendars synced, {self.events:,} events,"
                f" {self.rate(elapsed):,.0f} events/s{left}"
                + (f", {self.failed} failed" if self.failed else ""))

    def summary_line(self, elapsed: float) -> str:
        """The line of one poll cycle: calendars synced, changed, failed,
        objects skipped as unreadable, how long the cycle took."""
        again = (f" ({self.synced} syncs)" if self.synced > len(self.synced_calendars) else "")
        line = (f"{len(self.synced_calendars)} calendars synced{again}, "
                f"{len(self.changed_calendars)} changed, {self.failed} failed,"
                f" {self.unreadable} objects skipped, in {elapsed:.1f} s"
                f" (sync time {self.sync_seconds:.1f} s)")
        if self.leased_elsewhere:
            line += f"; {self.leased_elsewhere} left to another process"
        if self.failures:
            shown = ", ".join(sorted(self.failures)[:5])
            more = f" and {len(self.failures) - 5} more" if len(self.failures) > 5 else ""
            line += f"; failed: {shown}{more}"
        return line
