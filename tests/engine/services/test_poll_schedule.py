"""Polls spread evenly over the poll interval, each calendar at a stable
phase (issue 24: 500 calendars polled within 25 s of each other)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.services.poll_schedule import EPOCH, first_run, poll_phases

FIVE_MINUTES = timedelta(minutes=5)


def test_five_hundred_calendars_come_one_every_interval_over_n() -> None:
    keys = [f"room-{n:03d}" for n in range(500)]
    phases = sorted(poll_phases(keys, FIVE_MINUTES).values())
    gaps = {later - earlier for earlier, later in itertools.pairwise(phases)}
    assert gaps == {timedelta(milliseconds=600)}
    assert phases[0] == timedelta(0) and phases[-1] < FIVE_MINUTES


def test_a_phase_does_not_depend_on_the_order_of_the_keys_or_the_process() -> None:
    keys = [f"cal-{n}" for n in range(40)]
    assert poll_phases(keys, FIVE_MINUTES) == poll_phases(list(reversed(keys)), FIVE_MINUTES)
    # not the config order: two neighbours in the config are not neighbours in time
    phases = poll_phases(keys, FIVE_MINUTES)
    assert [phases[k] for k in keys] != sorted(phases[k] for k in keys)


@given(st.integers(0, 10**6), st.integers(1, 3600), st.integers(0, 10**9))
def test_the_first_run_is_the_next_instant_at_the_phase(phase_s: int, every_s: int,
                                                         now_s: int) -> None:
    interval = timedelta(seconds=every_s)
    phase = timedelta(seconds=phase_s) % interval
    now = EPOCH + timedelta(seconds=now_s, microseconds=123)
    run = first_run(phase, interval, now)
    assert now <= run < now + interval
    assert (run - EPOCH) % interval == phase


def test_a_restart_finds_the_same_instants() -> None:
    phase = poll_phases(["a", "b", "c"], FIVE_MINUTES)["b"]
    now = datetime(2027, 3, 1, 9, 0, 7, tzinfo=UTC)
    before = first_run(phase, FIVE_MINUTES, now)
    after_restart = first_run(phase, FIVE_MINUTES, now + timedelta(minutes=17, seconds=3))
    assert (after_restart - before) % FIVE_MINUTES == timedelta(0)
