"""The line ``calpool sync`` prints per calendar (issue 21: skipped objects)."""

from __future__ import annotations

from daemon.commands.sync import describe
from engine.services.sync import SyncReport


def test_the_sync_line_names_unreadable_objects() -> None:
    report = SyncReport(
        "room",
        "synced",
        full=True,
        changed=3,
        unreadable=2,
        last_unreadable="/c/bad.ics: event 'x': unknown zone 'Custom'",
    )
    assert describe(report) == (
        "room: synced (full listing), 3 changed, 0 removed, "
        "2 unreadable (e.g. /c/bad.ics: event 'x': unknown zone 'Custom')"
    )


def test_the_sync_line_is_unchanged_when_everything_was_read() -> None:
    report = SyncReport("room", "synced", changed=1, removed=2)
    assert describe(report) == "room: synced (changes), 1 changed, 2 removed"
