"""The pure engine core: no I/O, no clock, no randomness of its own.

- :mod:`~engine.core.model` — the frozen domain values.
- :mod:`~engine.core.zones` — wall-clock time ↔ UTC instants per local day
  (the DST choices live in its docstring).
- :mod:`~engine.core.intervals` — :class:`IntervalSet`, half-open interval
  algebra on epoch microseconds.
- :mod:`~engine.core.busy` — :class:`BusyTimeline`, one per calendar.
- :mod:`~engine.core.hours` — working time and the owner's step grid.
- :mod:`~engine.core.availability` — start spans and the grid sweep.
- :mod:`~engine.core.slots` — :func:`find_slots` and :func:`check_start`.
- :mod:`~engine.core.assignment` — :func:`assign_room`.
"""
