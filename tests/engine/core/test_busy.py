"""The in-memory busy timeline the daemon keeps per calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.busy import BusyTimeline
from engine.core.model import Interval, RemoteEvent
from engine.core.zones import to_us

T = datetime(2027, 5, 3, 9, tzinfo=UTC)


def event(source: str, start: int, end: int, *, busy: bool = True) -> RemoteEvent:
    return RemoteEvent(source=source, uid=source, start=T + timedelta(minutes=start),
                       end=T + timedelta(minutes=end), busy=busy)


def test_from_events_merges_busy_and_skips_free_events() -> None:
    timeline = BusyTimeline.from_events([
        event("a", 0, 30), event("b", 20, 60), event("c", 90, 120, busy=False),
        event("d", 60, 70), event("e", 200, 200)])
    assert list(timeline) == [Interval(T, T + timedelta(minutes=70))]
    assert isinstance(timeline, BusyTimeline)


def test_window_returns_the_spans_that_meet_it() -> None:
    timeline = BusyTimeline.from_intervals(
        Interval(T + timedelta(hours=h), T + timedelta(hours=h, minutes=30)) for h in range(10))
    starts, ends = timeline.window(to_us(T + timedelta(hours=2, minutes=30)),
                                   to_us(T + timedelta(hours=4, minutes=1)))
    # [2:00, 2:30) only touches the window's start, so it is left out.
    assert starts.tolist() == [to_us(T + timedelta(hours=h)) for h in (3, 4)]
    assert ends.tolist() == [to_us(T + timedelta(hours=h, minutes=30)) for h in (3, 4)]
