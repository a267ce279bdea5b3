"""Several processes on one database: which config each runs, and who may
drop calendars.

Every process records its config's fingerprint (and the calendars it names)
when it starts and reloads (:mod:`engine.store.processes`), and refreshes
its row while it runs.  The *newest* config is the one first seen last
among the configs of the processes running (rows refreshed within
``alive_within``); a reload is a deliberate change, so it makes the
reloaded config the newest even if it was seen before (a revert), while a
start only adds a config never seen.  A process alone (the others stopped)
has the newest config.  A process whose config is not the newest logs that on start
and reload and shows it in ``calpool status``; it never drops a calendar it
does not know from the store, since the newest config may serve it.  Only a
process with the newest config drops calendars its config lost, or an
operator with ``calpool db forget-calendar KEY``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.services import housekeeping
from engine.store import ConfigSeen, ProcessSeen, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """This process's config against the newest one in the database."""

    fingerprint: str
    calendars: tuple[str, ...]
    newest: ConfigSeen | None

    @property
    def current(self) -> bool:
        return self.newest is None or self.newest.fingerprint == self.fingerprint

    @property
    def only_in_newest(self) -> list[str]:
        return [] if self.newest is None else sorted(set(self.newest.calendars) -
                                                     set(self.calendars))

    @property
    def only_here(self) -> list[str]:
        return [] if self.newest is None else sorted(set(self.calendars) -
                                                     set(self.newest.calendars))


class ProcessRegistry:
    """This process's record in the database; see the module docstring.
    ``alive_within``: a process whose row was not refreshed for this long
    counts as gone (its leases run out after ``lease_ttl`` as well)."""

    def __init__(self, store: Store, *, holder: str, host: str, fingerprint: str,
                 calendars: Sequence[str], clock: Clock, alive_within: timedelta) -> None:
        self._store = store
        self.holder = holder
        self._host = host
        self.fingerprint = fingerprint
        self._calendars = tuple(calendars)
        self._clock = clock
        self._alive_within = alive_within

    def announce(self, *, reload: bool = False) -> ConfigCheck:
        """Record this process and its config (``reload``: make it the
        newest), then compare; a difference is logged as a warning."""
        now = self._clock()
        with self._store.unit_of_work() as uow:
            uow.processes.record(holder=self.holder, host=self._host,
                                 fingerprint=self.fingerprint, calendars=self._calendars,
                                 now=now, newest=reload)
            uow.commit()
        check = self.check()
        if not check.current:
            _log_difference(check)
        return check

    def check(self) -> ConfigCheck:
        with self._store.reader() as uow:
            newest = uow.processes.newest_config(self._clock() - self._alive_within)
        return ConfigCheck(self.fingerprint, self._calendars, newest)

    def heartbeat(self) -> None:
        """Say this process still runs (records it anew if its row is gone)."""
        with self._store.unit_of_work() as uow:
            if not uow.processes.touch(self.holder, self._clock()):
                uow.processes.record(holder=self.holder, host=self._host,
                                     fingerprint=self.fingerprint, calendars=self._calendars,
                                     now=self._clock())
            uow.commit()

    def leave(self) -> None:
        with self._store.unit_of_work() as uow:
            uow.processes.leave(self.holder)
            uow.commit()

    def running(self) -> list[ProcessSeen]:
        with self._store.reader() as uow:
            return uow.processes.running(self._clock() - self._alive_within)

    def forget_removed_calendars(self) -> list[str]:
        """Drop the calendars this config lost, when it is the newest;
        otherwise drop nothing (the newest config decides)."""
        check = self.check()
        if not check.current:
            log.info("not dropping calendars: this process's config is not the newest")
            return []
        return housekeeping.forget_removed_calendars(self._store, self._calendars)


def _log_difference(check: ConfigCheck) -> None:
    newest = check.newest
    assert newest is not None
    details = []
    if check.only_in_newest:
        details.append(f"calendars only in the newest: {', '.join(check.only_in_newest)}")
    if check.only_here:
        details.append(f"calendars only here: {', '.join(check.only_here)}")
    log.warning(
        "this process's config (fingerprint %s) differs from the newest one in the database "
        "(%s, first run %s)%s; it drops no calendar it does not know: the newest config "
        "decides, or `calpool db forget-calendar KEY`",
        check.fingerprint[:12], newest.fingerprint[:12], newest.first_seen_at.isoformat(),
        "; " + "; ".join(details) if details else "",
    )
