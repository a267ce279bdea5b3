"""Progress of a run of syncs and the poll cycle's summary (issue 24)."""

from __future__ import annotations

import io
import logging
import os
import select

import pytest

from daemon.cycles import PollCycles
from daemon.progress import SyncProgress
from engine.services.sync import SyncReport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def synced(key: str, changed: int = 10) -> SyncReport:
    return SyncReport(key, "synced", full=True, changed=changed)


def test_not_on_a_terminal_a_plain_line_comes_every_tenth_of_the_calendars() -> None:
    out, clock, lines = io.StringIO(), Clock(), []
    with SyncProgress(out, 20, title="sync", clock=clock, emit=lines.append) as progress:
        for n in range(20):
            clock.now += 0.5
            progress.add(synced(f"c{n}"), 0.5)
    assert len(lines) == 10
    assert lines[0] == "sync: 2/20 calendars synced, 20 events, 20 events/s, about 9 s left"
    assert lines[-1] == "sync: 20/20 calendars synced, 200 events, 20 events/s, about 0 s left"
    assert out.getvalue() == ""  # nothing drawn on a pipe


def test_on_a_terminal_a_bar_shows_calendars_events_and_time_left() -> None:
    """A pseudo-terminal: rich draws the bar there and nothing goes to ``emit``."""
    leader, follower = os.openpty()
    lines: list[str] = []
    with os.fdopen(follower, "w") as stream:
        with SyncProgress(stream, 3, title="sync", emit=lines.append) as progress:
            progress.add(synced("a", 7), 0.1)
            progress.print("a: synced", stream)
        stream.flush()
        drawn = b""
        wanted = (b"1/3 calendars", b"a: synced")
        while not all(w in drawn for w in wanted) and select.select([leader], [], [], 5)[0]:
            drawn += os.read(leader, 65536)
    os.close(leader)
    assert lines == []
    assert all(w in drawn for w in (b"a: synced", b"1/3 calendars", b"7 events", b"ETA"))


def test_a_poll_cycle_ends_with_one_info_line_once_every_calendar_was_polled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    cycles = PollCycles(["a", "b", "c"], clock=clock)
    caplog.set_level(logging.INFO, logger="calpool.sync")
    for key in ("a", "b", "c"):
        clock.now += 1
        cycles.polled(key, synced(key), 0.2)
    first = [r.getMessage() for r in caplog.records]
    assert first[-1].startswith("first sync: 3 calendars synced, 3 changed, 0 failed,")
    assert any(m.startswith("first sync: 3/3 calendars synced, 30 events") for m in first)
    caplog.clear()
    cycles.polled("b", SyncReport("b", "synced"), 0.1)
    cycles.polled("b", SyncReport("b", "synced"), 0.1)  # polled again: still one cycle
    cycles.polled("a", None, 0.0)  # not due (push channel): counts as polled
    clock.now += 300
    cycles.polled("c", SyncReport("c", "failed", error="503"), 0.3)
    assert [r.getMessage() for r in caplog.records] == [
        # b once among the calendars, its second sync said beside them
        "poll cycle 1: 1 calendars synced (2 syncs), 0 changed, 1 failed, 0 objects skipped,"
        " in 300.0 s (sync time 0.5 s); failed: c"]
