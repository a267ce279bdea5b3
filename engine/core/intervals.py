"""Interval algebra on UTC instants: half-open spans ``[start, end)``.

An :class:`IntervalSet` holds its spans as two int64 numpy arrays of epoch
microseconds (see :mod:`engine.core.zones`), always *normal*: sorted,
non-empty, pairwise disjoint and non-adjacent (``[1, 2)`` and ``[2, 3)``
are one span ``[1, 3)``).  Normal form makes equality of sets equality of
arrays, and lets every query run as a ``searchsorted`` on sorted arrays.

Set operations sweep the sorted boundaries of the operands once: the
elementary segments between consecutive distinct boundaries each have a
coverage count, and a segment belongs to the result when its counts satisfy
the operation (union: any; intersection: all; difference: first and not
second).  Cost: one sort of the boundaries, then linear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Self

import numpy as np
import numpy.typing as npt

from engine.core.model import Interval
from engine.core.zones import from_us, to_us

Instants = npt.NDArray[np.int64]


def _frozen(values: npt.ArrayLike) -> Instants:
    array = np.array(values, dtype=np.int64)
    array.flags.writeable = False
    return array


def normalize(starts: npt.ArrayLike, ends: npt.ArrayLike) -> tuple[Instants, Instants]:
    """Sort, drop empty spans and merge overlapping or adjacent ones.

    ``starts[i] > ends[i]`` is an error; ``starts[i] == ends[i]`` is empty.
    """
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if s.shape != e.shape or s.ndim != 1:
        raise ValueError("starts and ends must be one-dimensional and of equal length")
    if np.any(e < s):
        raise ValueError("a span ends before it starts")
    keep = e > s
    s, e = s[keep], e[keep]
    if s.size == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    # A span opens a new group when it starts after everything before it
    # has ended (strictly: touching spans merge).
    opens = np.empty(s.size, dtype=bool)
    opens[0] = True
    opens[1:] = s[1:] > reach[:-1]
    first = np.flatnonzero(opens)
    last = np.append(first[1:], s.size) - 1
    return s[first], reach[last]


class IntervalSet:
    """An immutable set of UTC instants as normal half-open spans."""

    __slots__ = ("ends", "starts")

    starts: Instants
    ends: Instants

    def __init__(self, starts: npt.ArrayLike = (), ends: npt.ArrayLike = ()) -> None:
        s, e = normalize(starts, ends)
        self.starts = _frozen(s)
        self.ends = _frozen(e)

    @classmethod
    def _normal(cls, starts: Instants, ends: Instants) -> IntervalSet:
        # Internal: the arrays are already normal; skip the sort.
        result = cls.__new__(cls)
        result.starts = _frozen(starts)
        result.ends = _frozen(ends)
        return result

    @classmethod
    def from_intervals(cls, intervals: Iterable[Interval]) -> Self:
        """The union of ``intervals`` (any order, overlaps allowed)."""
        pairs = [(to_us(i.start), to_us(i.end)) for i in intervals]
        if not pairs:
            return cls()
        starts, ends = zip(*pairs, strict=True)
        return cls(starts, ends)

    @classmethod
    def span(cls, start: datetime, end: datetime) -> Self:
        """The one span ``[start, end)`` (empty when ``start == end``)."""
        return cls([to_us(start)], [to_us(end)])

    def __len__(self) -> int:
        return int(self.starts.size)

    def __bool__(self) -> bool:
        return self.starts.size > 0

    def __iter__(self) -> Iterator[Interval]:
        for start, end in zip(self.starts.tolist(), self.ends.tolist(), strict=True):
            yield Interval(from_us(start), from_us(end))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return np.array_equal(self.starts, other.starts) and np.array_equal(
            self.ends, other.ends
        )

    def __hash__(self) -> int:
        return hash((self.starts.tobytes(), self.ends.tobytes()))

    def __repr__(self) -> str:
        spans = ", ".join(f"[{i.start.isoformat()}, {i.end.isoformat()})" for i in self)
        return f"{type(self).__name__}({spans})"

    @property
    def total_us(self) -> int:
        """Microseconds covered."""
        return int((self.ends - self.starts).sum())

    def contains(self, start_us: int, end_us: int) -> bool:
        """Whether ``[start, end)`` lies inside one span (true if empty)."""
        if end_us <= start_us:
            return True
        i = int(np.searchsorted(self.starts, start_us, side="right")) - 1
        return i >= 0 and int(self.ends[i]) >= end_us

    def overlaps(self, start_us: int, end_us: int) -> bool:
        """Whether ``[start, end)`` shares an instant with the set."""
        if end_us <= start_us:
            return False
        i = int(np.searchsorted(self.ends, start_us, side="right"))
        return i < self.starts.size and int(self.starts[i]) < end_us

    def clip(self, start_us: int, end_us: int) -> IntervalSet:
        """The part of the set inside ``[start, end)``; cost logarithmic plus
        the spans kept."""
        lo = int(np.searchsorted(self.ends, start_us, side="right"))
        hi = int(np.searchsorted(self.starts, end_us, side="left"))
        if hi <= lo:
            return IntervalSet()
        s = np.maximum(self.starts[lo:hi], start_us)
        e = np.minimum(self.ends[lo:hi], end_us)
        return IntervalSet._normal(s, e)

    def union(self, *others: IntervalSet) -> IntervalSet:
        return _combine((self, *others), lambda counts: np.any(counts > 0, axis=0))

    def intersection(self, *others: IntervalSet) -> IntervalSet:
        return _combine((self, *others), lambda counts: np.all(counts > 0, axis=0))

    def difference(self, other: IntervalSet) -> IntervalSet:
        return _combine((self, other), lambda counts: (counts[0] > 0) & (counts[1] == 0))

    def complement(self, start_us: int, end_us: int) -> IntervalSet:
        """The instants of ``[start, end)`` not in the set."""
        return IntervalSet([start_us], [max(start_us, end_us)]).difference(self)

    def shifted(self, before_us: int, after_us: int) -> IntervalSet:
        """Every span widened to ``[start - before, end + after)`` and merged;
        negative widths shrink (spans that vanish are dropped)."""
        s = self.starts - before_us
        e = self.ends + after_us
        keep = e > s
        return IntervalSet(s[keep], e[keep])


def _combine(
    operands: Sequence[IntervalSet],
    keep: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]],
) -> IntervalSet:
    bounds = np.unique(np.concatenate([b for o in operands for b in (o.starts, o.ends)]))
    if bounds.size < 2:
        return IntervalSet()
    # counts[k, j]: how many spans of operand k cover segment [bounds[j], bounds[j+1]).
    counts = np.zeros((len(operands), bounds.size), dtype=np.int64)
    for k, operand in enumerate(operands):
        np.add.at(counts[k], np.searchsorted(bounds, operand.starts), 1)
        np.add.at(counts[k], np.searchsorted(bounds, operand.ends), -1)
    counts = np.cumsum(counts, axis=1)[:, :-1]
    chosen = keep(counts)
    # Runs of chosen segments become spans: a run starts where chosen turns
    # on and ends where it turns off.
    edges = np.diff(chosen.astype(np.int8), prepend=0, append=0)
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1)
    return IntervalSet._normal(bounds[run_starts], bounds[run_ends])


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint, non-adjacent intervals."""
    return list(IntervalSet.from_intervals(intervals))


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The instants in both ``a`` and ``b``, merged."""
    return list(IntervalSet.from_intervals(a).intersection(IntervalSet.from_intervals(b)))


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """The instants in ``a`` and not in ``b``, merged."""
    return list(IntervalSet.from_intervals(a).difference(IntervalSet.from_intervals(b)))


def complement(a: Iterable[Interval], window: Interval) -> list[Interval]:
    """The instants of ``window`` not in ``a``, merged."""
    return list(IntervalSet.from_intervals(a).complement(to_us(window.start), to_us(window.end)))
