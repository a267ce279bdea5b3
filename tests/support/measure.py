"""Time and memory of one piece of work, for bounds in tests.

:func:`measured` runs a block with tracemalloc on (Python's own
allocations: the peak above the start) and a thread that samples the
process's resident set every 10 ms (everything, lxml's C allocations
included: the highest sample above the one taken at the start), and
records the wall time.  Sampling can miss a spike shorter than 10 ms; the
bounds tests set are generous for that reason too.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The process's resident set now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


@dataclass
class Cost:
    seconds: float = 0.0
    python_peak: int = 0  # bytes, tracemalloc's peak above the start (0: not traced)
    rss_growth: int = 0  # bytes, highest resident set sampled above the start

    def __str__(self) -> str:
        mib = 2**20
        return (
            f"{self.seconds:.2f} s, Python peak +{self.python_peak / mib:.1f} MiB, "
            f"RSS +{self.rss_growth / mib:.1f} MiB"
        )


@contextlib.contextmanager
def measured(*, python: bool = True) -> Iterator[Cost]:
    """``python=False`` leaves tracemalloc off (it slows pure-Python work
    such as expanding a long series several times over); RSS is sampled
    either way."""
    cost = Cost()
    done = threading.Event()
    start_rss = rss_bytes()
    highest = [start_rss]

    def sample() -> None:
        while not done.wait(0.01):
            highest[0] = max(highest[0], rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    tracing = tracemalloc.is_tracing()
    if python and not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    sampler.start()
    started = time.monotonic()
    try:
        yield cost
    finally:
        cost.seconds = time.monotonic() - started
        done.set()
        sampler.join()
        highest[0] = max(highest[0], rss_bytes())
        _, peak = tracemalloc.get_traced_memory()
        if python and not tracing:
            tracemalloc.stop()
        cost.python_peak = max(0, peak - base)
        cost.rss_growth = max(0, highest[0] - start_rss)
