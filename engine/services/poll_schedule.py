"""When each calendar is polled: evenly spread over the poll interval.

Polling every calendar at once each interval makes bursts that the providers
and the slot answers both feel.  Each calendar gets its own phase within the
interval instead: calendars are ordered by a hash of their key and placed
at even distances, so the polls of N calendars come one every
``interval / N``.  The phases count from the Unix epoch, not from the start
of the process: a restart (or a second process) keeps every calendar at its
phase instead of lining them up again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rank_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def poll_phases(keys: Iterable[str], interval: timedelta) -> Mapping[str, timedelta]:
    """Each key's offset within ``interval`` (0 ≤ offset < interval): by
    the hash of the key, at even distances.  The same keys give the same
    phases in every process."""
    ordered = sorted(dict.fromkeys(keys), key=_rank_key)
    count = len(ordered)
    micros = interval // timedelta(microseconds=1)
    return {key: timedelta(microseconds=micros * n // count) for n, key in enumerate(ordered)}


def first_run(phase: timedelta, interval: timedelta, now: datetime) -> datetime:
    """The first instant at or after ``now`` that lies at ``phase`` of
    ``interval`` counted from the epoch."""
    anchor = EPOCH + phase
    steps = -((anchor - now) // interval)  # ceil((now - anchor) / interval)
    return anchor + max(0, steps) * interval


def anchor_of(phase: timedelta) -> datetime:
    """The instant the interval trigger counts from (its start date)."""
    return EPOCH + phase
