"""Interval algebra laws, checked against sets of points on a small domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.intervals import IntervalSet, complement, intersect, merge, subtract
from engine.core.model import Interval, NaiveDatetimeError

DOMAIN = 40  # points 0..39 (µs); every span lies inside [0, DOMAIN)


@st.composite
def interval_sets(draw: st.DrawFn) -> IntervalSet:
    pairs = draw(st.lists(st.tuples(st.integers(0, DOMAIN), st.integers(0, 8)), max_size=6))
    return IntervalSet([a for a, _ in pairs], [min(DOMAIN, a + n) for a, n in pairs])


def points(s: IntervalSet) -> set[int]:
    return {p for a, b in zip(s.starts.tolist(), s.ends.tolist(), strict=True)
            for p in range(a, b)}


def is_normal(s: IntervalSet) -> bool:
    starts, ends = s.starts.tolist(), s.ends.tolist()
    return all(a < b for a, b in zip(starts, ends, strict=True)) and all(
        ends[i] < starts[i + 1] for i in range(len(starts) - 1))


sets = interval_sets()


@settings(max_examples=200)
@given(sets, sets)
def test_union_and_intersection_are_the_point_sets(a: IntervalSet, b: IntervalSet) -> None:
    assert points(a.union(b)) == points(a) | points(b)
    assert points(a.intersection(b)) == points(a) & points(b)
    assert points(a.difference(b)) == points(a) - points(b)
    for result in (a.union(b), a.intersection(b), a.difference(b)):
        assert is_normal(result)


@settings(max_examples=150)
@given(sets, sets, sets)
def test_algebra_laws(a: IntervalSet, b: IntervalSet, c: IntervalSet) -> None:
    assert a.union(b) == b.union(a)
    assert a.intersection(b) == b.intersection(a)
    assert a.union(b).union(c) == a.union(b.union(c)) == a.union(b, c)
    assert a.intersection(b.union(c)) == a.intersection(b).union(a.intersection(c))
    assert a.difference(b) == a.intersection(b.complement(0, DOMAIN))
    # De Morgan within the window.
    assert a.union(b).complement(0, DOMAIN) == a.complement(0, DOMAIN).intersection(
        b.complement(0, DOMAIN))
    assert a.complement(0, DOMAIN).complement(0, DOMAIN) == a
    assert a.union(a) == a == a.intersection(a)
    assert not a.difference(a)


@settings(max_examples=150)
@given(sets, st.integers(0, DOMAIN), st.integers(0, DOMAIN))
def test_queries_match_points(s: IntervalSet, x: int, y: int) -> None:
    lo, hi = min(x, y), max(x, y)
    span = set(range(lo, hi))
    assert points(s.complement(lo, hi)) == span - points(s)
    assert points(s.clip(lo, hi)) == points(s) & span
    assert s.overlaps(lo, hi) == bool(points(s) & span)
    # Inside one span: every point covered and no gap between them.
    inside = any(a <= lo and hi <= b for a, b in zip(s.starts.tolist(), s.ends.tolist(),
                                                      strict=True))
    assert s.contains(lo, hi) == (inside or lo == hi)
    assert s.total_us == len(points(s))


@settings(max_examples=100)
@given(sets, st.integers(0, 5), st.integers(0, 5))
def test_widening_covers_every_neighbour(s: IntervalSet, before: int, after: int) -> None:
    widened = points(s.shifted(before, after))
    # A span [a, b) widens to [a - before, b + after): the point b + after is out.
    expected = {q for a, b in zip(s.starts.tolist(), s.ends.tolist(), strict=True)
                for q in range(a - before, b + after)}
    assert widened == expected


def test_normal_form_merges_touching_and_drops_empty() -> None:
    s = IntervalSet([5, 0, 2, 9], [7, 2, 3, 9])
    assert s.starts.tolist() == [0, 5]
    assert s.ends.tolist() == [3, 7]


def test_span_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        IntervalSet([3], [2])


def test_arrays_are_read_only() -> None:
    s = IntervalSet([1], [2])
    with pytest.raises(ValueError):
        s.starts[0] = 0


T0 = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_interval_functions_work_on_datetimes() -> None:
    a = [Interval(at(0), at(30)), Interval(at(20), at(60)), Interval(at(90), at(120))]
    b = [Interval(at(50), at(100))]
    assert merge(a) == [Interval(at(0), at(60)), Interval(at(90), at(120))]
    assert intersect(a, b) == [Interval(at(50), at(60)), Interval(at(90), at(100))]
    assert subtract(a, b) == [Interval(at(0), at(50)), Interval(at(100), at(120))]
    assert complement(a, Interval(at(-10), at(200))) == [
        Interval(at(-10), at(0)), Interval(at(60), at(90)), Interval(at(120), at(200))]


def test_microseconds_survive_the_round_trip() -> None:
    start = datetime(2027, 1, 1, 9, 0, 0, 123_457, tzinfo=UTC)
    [interval] = merge([Interval(start, start + timedelta(microseconds=1))])
    assert interval.start == start and interval.duration == timedelta(microseconds=1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        IntervalSet.span(datetime(2027, 1, 1), datetime(2027, 1, 2))
