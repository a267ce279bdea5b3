"""Slot query benchmark: one owner and a 100-room pool, 20,000 busy intervals.

Times the engine call from in-memory busy intervals to the slots with
their free rooms (``engine.core.slots.find_slots``) over (a) the whole 60
days and (b) one week, p50/p99 over many runs, beside a straightforward
reference measured in the same run: every candidate start checked against
every calendar with a bisect.  Both answers are compared before timing.

    .venv/bin/python bench/slots.py [--runs 60] [--reference-runs 10]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.core.busy import BusyTimeline
from engine.core.hours import grid
from engine.core.model import (
    Calendar,
    CalendarKind,
    EventType,
    Interval,
    Pool,
    Slot,
)
from engine.core.slots import find_slots
from engine.core.zones import from_us, to_us

ROOMS = 100
EVENTS = 20_000
DAYS = 60
ZONE = "Europe/Berlin"
START = datetime(2027, 3, 1, tzinfo=UTC)  # spans the spring-forward change


def scenario(seed: int = 7) -> tuple[EventType, dict[str, Calendar], dict[str, Pool],
                                     dict[str, list[tuple[int, int]]]]:
    """The owner and rooms, their busy intervals as (start, end) epoch µs."""
    rng = random.Random(seed)
    rooms = [f"room-{i:03d}" for i in range(ROOMS)]
    calendars = {"owner": Calendar("owner", CalendarKind.PERSON, ZONE)}
    calendars.update({r: Calendar(r, CalendarKind.ROOM, ZONE) for r in rooms})
    pools = {"rooms": Pool("rooms", tuple(rooms), timezone=ZONE)}
    event_type = EventType(key="meet", title="Meet", duration=timedelta(minutes=30),
                           step=timedelta(minutes=15), owner="owner", pools=("rooms",),
                           horizon=timedelta(days=DAYS + 1))
    busy: dict[str, list[tuple[int, int]]] = {key: [] for key in calendars}
    keys = list(calendars)
    span_us = DAYS * 86_400 * 1_000_000
    base = to_us(START)
    for _ in range(EVENTS):
        # The owner is as busy as any room; rooms share the rest.
        key = keys[rng.randrange(len(keys))]
        start = base + rng.randrange(span_us // 300_000_000) * 300_000_000
        length = rng.choice((15, 30, 45, 60, 90, 120, 240)) * 60_000_000
        busy[key].append((start, start + length))
    return event_type, calendars, pools, busy


def reference(event_type: EventType, calendars: Mapping[str, Calendar],
              pools: Mapping[str, Pool], busy: Mapping[str, list[tuple[int, int]]],
              window: Interval) -> list[tuple[int, tuple[str, ...]]]:
    """Every grid start checked against every calendar's sorted intervals."""
    duration = event_type.duration // timedelta(microseconds=1)
    pool = pools[event_type.pools[0]]
    ordered = {k: sorted(v) for k, v in busy.items()}
    starts_of = {k: [s for s, _ in v] for k, v in ordered.items()}
    # Intervals may overlap, so a prefix maximum of ends answers "does any
    # interval starting before x end after y".
    reach_of = {}
    for k, v in ordered.items():
        reach, top = [], -1
        for _, e in v:
            top = max(top, e)
            reach.append(top)
        reach_of[k] = reach

    def free(key: str, s: int) -> bool:
        i = bisect.bisect_left(starts_of[key], s + duration)
        return i == 0 or reach_of[key][i - 1] <= s

    candidates, _ = grid(calendars[event_type.owner].timezone, event_type.step,
                         to_us(window.start), to_us(window.end))
    answer = []
    for s in candidates.tolist():
        if not free(event_type.owner, s):
            continue
        rooms = tuple(r for r in pool.members if free(r, s))
        if rooms:
            answer.append((s, rooms))
    return answer


def measure(call: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        begin = time.perf_counter()
        call()
        times.append((time.perf_counter() - begin) * 1000)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--reference-runs", type=int, default=10)
    args = parser.parse_args()

    event_type, calendars, pools, raw = scenario()
    timelines = {k: BusyTimeline([s for s, _ in v], [e for _, e in v]) for k, v in raw.items()}
    now = START
    print(f"{ROOMS} rooms + owner, {sum(map(len, raw.values()))} busy intervals over {DAYS} days, "
          f"step 15m, duration 30m; engine runs {args.runs}, reference runs {args.reference_runs}")
    # Other work on the machine moves these figures; say how busy it was.
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for label, days in (("(a) 60 days", DAYS), ("(b) one week", 7)):
        window = Interval(START, START + timedelta(days=days))

        def engine(window: Interval = window) -> list[Slot]:
            return find_slots(event_type, calendars=calendars, pools=pools, busy=timelines,
                              bookings=(), window=window, now=now)

        def straightforward(window: Interval = window) -> object:
            return reference(event_type, calendars, pools, raw, window)

        got = [(to_us(s.start), s.rooms_available["rooms"]) for s in engine()]
        want = straightforward()
        if got != want:
            raise SystemExit(f"{label}: engine and reference disagree")
        rooms_listed = sum(len(r) for _, r in got)
        fast = measure(engine, args.runs)
        slow = measure(straightforward, args.reference_runs)
        p50, p99, ref50 = percentile(fast, 0.5), percentile(fast, 0.99), percentile(slow, 0.5)
        print(f"{label}: {len(got)} slots, {rooms_listed} free rooms listed, "
              f"first {from_us(got[0][0]).isoformat() if got else '-'}")
        print(f"    engine     p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
        print(f"    reference  p50 {ref50:7.2f} ms   p99 {percentile(slow, 0.99):7.2f} ms")
        print(f"    ratio (reference p50 / engine p50) {ref50 / p50:6.1f}x")


if __name__ == "__main__":
    main()
