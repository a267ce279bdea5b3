"""The figures of sync progress and of a poll cycle's summary (issue 24)."""

from __future__ import annotations

from engine.services.sync import SyncReport
from engine.services.sync_tally import SyncTally


def test_a_tally_counts_outcomes_events_and_skipped_objects() -> None:
    tally = SyncTally(total=4)
    tally.add(SyncReport("a", "synced", full=True, changed=30, unreadable=2), 2.0)
    tally.add(SyncReport("b", "synced"), 1.0)  # nothing changed
    tally.add(SyncReport("c", "failed", error="503"), 0.5)
    assert (tally.done, tally.synced, tally.changed, tally.failed) == (3, 2, 1, 1)
    assert (tally.events, tally.unreadable, tally.sync_seconds) == (30, 2, 3.5)
    assert tally.rate(10.0) == 3.0
    assert tally.eta(9.0) == 3.0  # 3 calendars in 9 s: the fourth in 3 s more
    assert tally.progress_line(9.0) == (
        "3/4 calendars synced, 30 events, 3 events/s, about 3 s left, 1 failed")


def test_the_summary_line_names_what_ops_look_for() -> None:
    tally = SyncTally(total=3)
    tally.add(SyncReport("room-b", "failed", error="503"), 0.25)
    tally.add(SyncReport("room-a", "synced", changed=1, removed=1), 0.25)
    tally.add(SyncReport("alice", "skipped"), 0.0)
    assert tally.summary_line(300.0) == (
        "1 calendars synced, 1 changed, 1 failed, 0 objects skipped, in 300.0 s"
        " (sync time 0.5 s); 1 left to another process; failed: room-b")


def test_no_time_left_is_guessed_before_anything_is_done() -> None:
    assert SyncTally(total=5).eta(3.0) is None
    tally = SyncTally()
    tally.add(SyncReport("a", "synced"))
    assert tally.eta(1.0) is None


def test_a_calendar_synced_twice_in_a_cycle_counts_once_and_the_syncs_are_said() -> None:
    """Regression: `calpool run` said "504 calendars synced" of 500 when a
    few phased polls came round before the first cycle ended."""
    tally = SyncTally(total=2)
    tally.add(SyncReport("room-a", "synced", full=True, changed=3), 1.0)
    tally.add(SyncReport("room-b", "synced", full=True, changed=1), 1.0)
    tally.add(SyncReport("room-a", "synced", changed=1), 0.5)
    assert tally.summary_line(60.0) == (
        "2 calendars synced (3 syncs), 2 changed, 0 failed, 0 objects skipped, in 60.0 s"
        " (sync time 2.5 s)")
