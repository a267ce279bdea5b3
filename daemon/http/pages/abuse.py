"""Bounds on the public booking page, which anyone may post to: at most
``http.public_rate`` bookings per client address, counted in this process
(a sliding window), and the client address itself.

Behind a reverse proxy every request comes from the proxy; with
``http.trust_proxy = true`` the address is the last entry of
``X-Forwarded-For``, the one the (single) proxy in front appended — the
entries before it are whatever the client sent.  Without ``trust_proxy``
the header is ignored, so a client cannot choose its own address.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from fastapi import Request


class PublicRate:
    """At most ``limit`` bookings per address within ``per``."""

    def __init__(self, limit: int, per: timedelta, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._per = per.total_seconds()
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may book again, ``None`` when it may now."""
        now = self._clock()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self._limit:
                return None
            return max(1, math.ceil(times[0] + self._per - now))

    def record(self, address: str) -> None:
        """Count one booking from ``address``."""
        now = self._clock()
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._seen) > 10_000:  # forget quiet addresses
                for key in [key for key, times in self._seen.items() if not times]:
                    del self._seen[key]

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.setdefault(address, deque())
        while times and times[0] <= now - self._per:
            times.popleft()
        return times


def client_address(request: Request, *, trust_proxy: bool) -> str:
    """The address a request comes from (see the module docstring)."""
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.client.host if request.client is not None else "unknown"
