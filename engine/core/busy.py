"""Per-calendar busy time kept in memory for the hot path."""

from __future__ import annotations

from collections.abc import Iterable

from engine.core.intervals import Instants, IntervalSet
from engine.core.model import RemoteEvent
from engine.core.zones import to_us


class BusyTimeline(IntervalSet):
    """The merged busy time of one calendar (epoch µs, normal form).

    The daemon keeps one per calendar and replaces it when a sync batch of
    that calendar commits: building one from 20,000 events is one sort.
    ``window`` slices it in logarithmic time for a query.  Build one from
    intervals with ``BusyTimeline.from_intervals`` or from cached events
    with :meth:`from_events`.
    """

    __slots__ = ()

    @classmethod
    def from_events(cls, events: Iterable[RemoteEvent]) -> BusyTimeline:
        """The busy time of ``events``: those marked free (transparent) are
        left out; zero-length ones block nothing."""
        starts: list[int] = []
        ends: list[int] = []
        for event in events:
            if event.busy and event.end > event.start:
                starts.append(to_us(event.start))
                ends.append(to_us(event.end))
        return cls(starts, ends)

    def window(self, start_us: int, end_us: int) -> tuple[Instants, Instants]:
        """The spans that meet ``[start, end)``, unclipped (views)."""
        lo = int(self.ends.searchsorted(start_us, side="right"))
        hi = int(self.starts.searchsorted(end_us, side="left"))
        return self.starts[lo:hi], self.ends[lo:hi]
