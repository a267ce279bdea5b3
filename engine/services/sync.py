"""Sync one calendar: lease, fetch, apply batch and cursor in one transaction.

The steps of :meth:`SyncService.sync_calendar` and why they are in this order:

1. Take the sync timestamp *before* asking the provider, so a change made
   while the request is in flight is never hidden behind a later stamp.
2. Take the calendar's lease ``sync:<calendar>`` (invariant 8); a calendar
   leased by another process is skipped, not waited for.  While the sync
   runs, a heartbeat renews the lease every third of ``lease_ttl``, so a
   long first listing keeps it (:mod:`engine.services.leases`).  Read the
   calendar's "sync requested" mark (a push notification raised it) in the same transaction.
3. Ask the connector: a full listing on first sync, on ``--full``, after the
   cursor expired, or when the sync window moved (it rolls forward daily, and
   a moved window needs the instances that entered it); else the changes
   since the cursor.
4. Apply the batch, the new cursor and the window in one transaction
   (invariant 2), only while the lease is still ours.  A crash before the
   commit repeats the fetch next time; it never skips a change.
5. Tell the in-memory busy cache, so slot queries see the batch at once.
6. While the lease is still ours and a notification arrived during the
   fetch (the mark was raised again), fetch once more: a notification is
   never dropped because a sync was running (in this process or another).
   A calendar whose lease another process holds keeps its mark, and
   :meth:`SyncService.sync_requested` (a job of every process) runs it as
   soon as the lease is free.

The mark is cleared in the transaction of the batch (step 4), up to the
request number read before the fetch, so a crash leaves it set.

A failure of any kind records a one-line reason on the calendar and leaves
its cache and cursor untouched; it never reaches the caller as an exception,
so one broken calendar cannot stop the others.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import ConnectorError, CursorExpired, RateLimited
from engine.ports import CalendarConnector, CalendarRef
from engine.services.availability import BusyCache
from engine.services.leases import HeldLease, LeaseKeeper
from engine.store import Store, SyncState, UnitOfWork, sync_lease

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Further fetches one lease holds for notifications that arrived during a
# fetch; past that the next run of ``sync_requested`` picks the mark up.
MORE_ROUNDS = 2

# A calendar marked for sync whose last attempt failed is retried this often.
RETRY_FAILED_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CalendarBinding:
    """How to reach one configured calendar: its connector (one per account)
    and the reference the connector understands.  ``connector`` is ``None``
    when the calendar's provider cannot be served by this build; ``reason``
    then says why, and every sync of it fails with that reason."""

    key: str
    ref: CalendarRef
    connector: CalendarConnector | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """How far back and ahead calendars are mirrored."""

    past: timedelta
    future: timedelta

    def at(self, now: datetime) -> Interval:
        """The window for ``now``: whole UTC days, so it moves once a day and
        a moved window is a rare, deliberate full listing."""
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=self.past.days + (1 if self.past % timedelta(days=1) else 0))
        end = today + timedelta(days=1) + self.future
        return Interval(start, end)


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync of one calendar did.  ``outcome`` is ``"synced"``,
    ``"skipped"`` (another process holds the lease; a "sync requested" mark
    stays set for whoever holds or takes it) or ``"failed"``."""

    calendar: str
    outcome: str
    full: bool = False
    changed: int = 0
    removed: int = 0
    version: int | None = None
    error: str = ""
    reconcile_differences: int = 0
    error_kind: str = ""
    """The failure's class in the error tree (``RateLimited``, ``AuthFailed``…)."""
    unreadable: int = 0
    """Objects fetched but not readable (their busy time is unknown)."""
    last_unreadable: str = ""
    """One of them as ``source: reason``, for the operator to look at."""

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


FetchObserver = Callable[[str, ChangeSet], None]
"""Told each calendar's fetched changes: before their commit (``on_fetched``)
or after it (``on_applied``: invited rooms' answers on calpool's own events)."""
SyncObserver = Callable[[SyncReport, float], None]
"""Told every sync's report and how many seconds it took (for metrics)."""


class SyncService:
    """Syncs configured calendars into the store and the busy cache."""

    def __init__(
        self,
        store: Store,
        bindings: Mapping[str, CalendarBinding],
        *,
        window: SyncWindow,
        cache: BusyCache | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=2),
        leases: LeaseKeeper | None = None,
        on_fetched: FetchObserver | None = None,
        on_synced: SyncObserver | None = None,
        on_applied: FetchObserver | None = None,
    ) -> None:
        self._store = store
        self._bindings = dict(bindings)
        self._window = window
        self._cache = cache
        self._clock = clock
        if leases is None:
            leases = LeaseKeeper(store, holder or f"calpool-{uuid.uuid4().hex[:12]}", lease_ttl,
                                 clock=clock)
        self._leases = leases
        self.holder = leases.holder
        self._lease_ttl = leases.ttl
        self._on_fetched = on_fetched
        self._on_synced = on_synced
        self._on_applied = on_applied
        # Calendars the provider throttled, and when it asked to be asked again
        # (its Retry-After): a marked calendar is retried then, not after
        # RETRY_FAILED_AFTER.  In memory: after a restart the default applies.
        self._retry_not_before: dict[str, datetime] = {}

    def window_at(self, now: datetime) -> Interval:
        return self._window.at(now)

    def roll_window_forward(self) -> tuple[Interval, list[str]]:
        """Sync every calendar whose cache was listed for another window than
        today's (the window is whole UTC days: after midnight a listing
        drops the day that left it and picks up the day that entered).
        Returns today's window and the calendars relisted."""
        window = self.window_at(self._clock())
        with self._store.reader() as uow:
            states = {state.calendar: state for state in uow.calendars.sync_states()}
        moved = []
        for key in self._bindings:
            state = states.get(key)
            if state is not None and state.window is not None and state.window != window:
                self.sync_calendar(key)
                moved.append(key)
        return window, moved

    def confirm_unchanged(self, keys: Iterable[str]) -> tuple[list[SyncReport], list[str]]:
        """For a pass over many calendars: ask each account once which of
        ``keys`` changed at all (on CalDAV one PROPFIND of the sync tokens
        instead of a REPORT per calendar), and record the others as synced
        in one transaction: their cursor stays, nothing else is asked of the
        provider.  Returns their reports, and the keys still to sync with
        :meth:`sync_calendar` (changed, never synced, listed for another
        window, a notification waiting, or their account could not tell).

        No lease is taken for a confirmed calendar: its row is written only
        while its cursor and window are still the ones found current, so a
        process that synced it meanwhile keeps what it wrote."""
        keys = list(dict.fromkeys(keys))
        started = time.perf_counter()
        now = self._clock()
        window = self._window.at(now)
        current = self._current_cursors(keys, window)
        if not current:
            return [], keys
        with self._store.unit_of_work() as uow:
            # A notification that came since the check is served by a sync.
            for key in uow.sync_requests.outstanding():
                current.pop(key, None)
            confirmed = uow.calendars.record_unchanged(current, window, now)
            uow.commit()
        seconds = (time.perf_counter() - started) / max(len(confirmed), 1)
        reports = []
        for key in sorted(confirmed):
            self._retry_not_before.pop(key, None)
            report = SyncReport(key, "synced", version=confirmed[key])
            if self._on_synced is not None:
                self._on_synced(report, seconds)
            reports.append(report)
        return reports, [key for key in keys if key not in confirmed]

    def _current_cursors(self, keys: Iterable[str], window: Interval) -> dict[str, str]:
        """Of ``keys``, the calendars whose provider says nothing changed
        since their stored cursor, with that cursor: asked once per account
        (:meth:`CalendarConnector.current_cursors`).  A calendar without a
        cursor, listed for another window or with a notification waiting is
        never among them; an account whose check failed leaves its calendars
        out."""
        with self._store.reader() as uow:
            states = {state.calendar: state for state in uow.calendars.sync_states()}
            marked = set(uow.sync_requests.outstanding())
        asked: dict[int, tuple[CalendarConnector, dict[CalendarRef, list[tuple[str, str]]]]] = {}
        for key in dict.fromkeys(keys):
            binding, state = self._bindings.get(key), states.get(key)
            if binding is None or binding.connector is None or state is None \
                    or state.cursor is None or state.window != window or key in marked:
                continue
            _, refs = asked.setdefault(id(binding.connector), (binding.connector, {}))
            refs.setdefault(binding.ref, []).append((key, state.cursor))
        current: dict[str, str] = {}
        for connector, refs in asked.values():
            cursors = {ref: keyed[0][1] for ref, keyed in refs.items()}
            try:
                confirmed = connector.current_cursors(cursors)
            except ConnectorError as exc:
                log.info("the cursors of %d calendars were not checked: %s", len(cursors), exc)
                continue
            current.update(
                (key, cursor) for ref, keyed in refs.items() if ref.id in confirmed
                for key, cursor in keyed if cursor == cursors[ref]
            )
        return current

    def sync_calendar(self, key: str, *, full: bool = False, reconcile: bool = False) -> SyncReport:
        """One sync of calendar ``key``; see the module docstring.
        ``reconcile`` lists the whole window and logs how the cache differed."""
        started = time.perf_counter()
        report = self._sync(key, full=full, reconcile=reconcile)
        if report.outcome == "synced":
            self._retry_not_before.pop(key, None)
        if self._on_synced is not None:
            self._on_synced(report, time.perf_counter() - started)
        return report

    def poll(self, key: str, *, quiet_for: timedelta | None = None) -> SyncReport | None:
        """A scheduled poll of ``key``.  ``quiet_for`` is given when the
        calendar has a live push channel: then the poll is only the safety
        poll, due once the last success is older than ``quiet_for``
        (``None``: not due, nothing ran)."""
        if quiet_for is not None:
            with self._store.reader() as uow:
                state = uow.calendars.sync_state(key)
            if state is not None and state.last_success_at is not None and not state.failed \
                    and self._clock() - state.last_success_at < quiet_for:
                return None
        return self.sync_calendar(key)

    def sync_requested(self) -> list[SyncReport]:
        """Sync every configured calendar whose "sync requested" mark is set
        (a push notification arrived), one after another; one leased by
        another process is skipped and keeps its mark for the next run."""
        return [self.sync_calendar(key) for key in self.requested_due()]

    def requested_due(self) -> list[str]:
        """The configured calendars whose "sync requested" mark is set, in
        the order they were marked.  A marked calendar whose last attempt
        failed waits :data:`RETRY_FAILED_AFTER` before the next try, so a
        broken provider is not asked every few seconds; one the provider
        throttled waits what its Retry-After asked instead."""
        now = self._clock()
        with self._store.reader() as uow:
            marked = [key for key in uow.sync_requests.outstanding() if key in self._bindings]
            states = {state.calendar: state for state in uow.calendars.sync_states()}
        return [
            key for key in marked
            if (state := states.get(key)) is None
            or not state.failed
            or state.last_attempt_at is None
            or now >= self._retry_not_before.get(key, state.last_attempt_at + RETRY_FAILED_AFTER)
        ]

    def _sync(self, key: str, *, full: bool, reconcile: bool) -> SyncReport:
        now = self._clock()
        seen: list[tuple[SyncState | None, int]] = []

        def begin(uow: UnitOfWork) -> None:
            uow.calendars.record_attempt(key, now)
            seen.append((uow.calendars.sync_state(key), uow.sync_requests.requested(key)))

        held = self._leases.try_hold(sync_lease(key), also=begin)
        if held is None:
            return SyncReport(key, "skipped")
        with held:  # the heartbeat renews the lease while the provider answers
            state, requested = seen[0]
            return self._sync_held(key, now, held, state, requested, full=full,
                                   reconcile=reconcile)

    def _sync_held(self, key: str, now: datetime, held: HeldLease, state: SyncState | None,
                   requested: int, *, full: bool, reconcile: bool) -> SyncReport:
        released = False
        try:
            report, released = self._round(key, state, requested, now, full=full,
                                           reconcile=reconcile)
            for _ in range(MORE_ROUNDS):
                if released:
                    break
                with self._store.unit_of_work() as uow:
                    if not uow.sync_requests.is_outstanding(key):
                        break
                    state = uow.calendars.sync_state(key)
                    requested = uow.sync_requests.requested(key)
                now = self._clock()
                report, released = self._round(key, state, requested, now, full=False,
                                               reconcile=False)
            if released:
                held.given_up()
            return report
        except Exception as exc:  # one calendar's failure must not stop the others
            reason = _throttled(exc) + _one_line(exc)
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                self._retry_not_before[key] = now + timedelta(seconds=exc.retry_after)
            else:
                self._retry_not_before.pop(key, None)
            if isinstance(exc, ConnectorError):
                log.warning("sync of %s failed: %s", key, reason, extra={"calendar": key})
            else:
                log.exception("sync of %s failed unexpectedly", key, extra={"calendar": key})
            with self._store.unit_of_work() as uow:
                uow.calendars.record_failure(key, now, reason)
                uow.commit()
            return SyncReport(key, "failed", error=reason, error_kind=type(exc).__name__)

    def _round(
        self,
        key: str,
        state: SyncState | None,
        requested: int,
        now: datetime,
        *,
        full: bool,
        reconcile: bool,
    ) -> tuple[SyncReport, bool]:
        """One fetch and its batch; also whether the batch's transaction
        gave the lease up (no notification waiting: nothing more to fetch)."""
        binding = self._bindings[key]
        window = self._window.at(now)
        if binding.connector is None:
            raise ConnectorError(binding.reason or "this calendar's provider is not available")
        cursor = state.cursor if state is not None else None
        moved = state is None or state.window != window
        listing = full or reconcile or cursor is None or moved
        changes = self._fetch(binding.connector, binding.ref, cursor, window, listing=listing)
        if self._on_fetched is not None:
            self._on_fetched(key, changes)
        committed = self._commit(key, changes, window, now, reconcile=reconcile,
                                 requested=requested)
        if self._on_applied is not None and changes.objects:
            try:
                self._on_applied(key, changes)
            except Exception:  # the sync itself is committed; what follows may fail alone
                log.exception("after the sync of %s", key, extra={"calendar": key})
        return committed

    def _fetch(
        self,
        connector: CalendarConnector,
        ref: CalendarRef,
        cursor: str | None,
        window: Interval,
        *,
        listing: bool,
    ) -> ChangeSet:
        if listing or cursor is None:
            return connector.list_window(ref, window)
        try:
            return connector.changes_since(ref, cursor, window)
        except CursorExpired:
            log.info("cursor of %s expired: listing the window anew", ref.id)
            return connector.list_window(ref, window)

    def _commit(
        self,
        key: str,
        changes: ChangeSet,
        window: Interval,
        now: datetime,
        *,
        reconcile: bool,
        requested: int = 0,
    ) -> tuple[SyncReport, bool]:
        with self._store.unit_of_work() as uow:
            if not uow.leases.renew(sync_lease(key), self.holder, self._lease_ttl, self._clock()):
                raise ConnectorError("the sync lease was lost before the batch could be applied")
            before = uow.events.in_window(key, window) if reconcile or changes.full else []
            differences = _differences(before, changes) if reconcile else 0
            version = uow.events.apply_changes(key, changes, window, synced_at=now)
            uow.sync_requests.serve(key, requested)
            # No notification came during the fetch: the lease is given up in
            # this transaction, one commit (an fsync on SQLite) fewer a sync.
            release = not uow.sync_requests.is_outstanding(key)
            if release:
                uow.leases.release(sync_lease(key), self.holder)
            uow.commit()
        if differences:
            log.warning(
                "reconcile of %s: %d cached events differed from the provider; fixed",
                key,
                differences,
                extra={"calendar": key},
            )
        if self._cache is not None and (changes.full or changes.objects):
            self._cache.reload(self._store, [key])
        changed = sum(1 for instances in changes.objects.values() if instances)
        # an unreadable object is listed as gone, but was not removed at the provider
        removed = len(changes.objects) - changed - len(changes.unreadable.keys() & changes.objects)
        if changes.full:
            listed = set(changes.objects)
            removed += len({event.source for event in before} - listed)
        return (SyncReport(
            key,
            "synced",
            full=changes.full,
            changed=changed,
            removed=removed,
            version=version,
            reconcile_differences=differences,
            unreadable=len(changes.unreadable),
            last_unreadable=next(
                (f"{source}: {reason}" for source, reason in sorted(changes.unreadable.items())), ""
            ),
        ), release)


def _differences(cached: list[RemoteEvent], listing: ChangeSet) -> int:
    """How many events a full listing adds, drops or alters against the cache."""

    def shape(event: RemoteEvent) -> tuple[object, ...]:
        return (event.identity, event.start, event.end, event.busy, event.booking_id)

    before = {shape(event) for event in cached}
    after = {shape(event) for instances in listing.objects.values() for event in instances}
    return len(before ^ after)


def _throttled(exc: BaseException) -> str:
    """For a throttle, what the operator reads first in ``calpool status``:
    that the provider throttled the calendar and calpool retries by itself
    (a notification's mark stays set; polls go on)."""
    if not isinstance(exc, RateLimited):
        return ""
    after = "" if exc.retry_after is None else f" (Retry-After {exc.retry_after:.0f} s)"
    return f"throttled by the provider{after}, retrying by itself: "


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {text}"
