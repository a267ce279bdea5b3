"""Sync engine benchmark: the store's apply path, and whole syncs over CalDAV.

1. Apply path.  ``--events`` changed objects (creates, moves: same source,
   new times, and deletes: an empty tuple) go through
   ``uow.events.apply_changes`` in batches of ``--batch`` objects per
   transaction, as a sync batch does, on SQLite and PostgreSQL.  Beside it,
   in the same run and on the same database: a naive writer doing one
   INSERT / UPDATE / DELETE and one commit per event, timed on a smaller
   sample and extrapolated as a rate; and the apply path with one object
   per transaction, also on a sample.  The cached rows are checked against
   the generator's own model afterwards.
2. Sync over a loopback Radicale.  ``--calendars`` collections of
   ``--per-calendar`` objects (one in ten a weekly series) are seeded with
   one collection PUT each (Radicale stores every event as its own item),
   then synced into a fresh SQLite store through ``SyncService``: the first
   full sync sequentially and with ``PARALLEL_SYNCS`` threads as ``calpool
   sync`` does, an incremental sync of all calendars after one event moved,
   and an incremental sync of that one calendar.

    .venv/bin/python bench/sync_apply.py [--events 100000] [--calendars 100]
        [--skip-postgres] [--skip-caldav] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, update

from connectors.caldav import CalDAVAccount, CalDAVConnector
from daemon.commands.sync import PARALLEL_SYNCS
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.ports import CalendarRef
from engine.services.availability import BusyCache
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store, migrate
from engine.store.database import create_store_engine
from engine.store.schema import busy_events
from tests.support.caldav_servers import Server, start_radicale
from tests.support.postgres import PostgresStartError, start_postgres

NOW = datetime(2027, 3, 1, 6, tzinfo=UTC)
WINDOW = Interval(NOW - timedelta(days=30), NOW + timedelta(days=400))
TARGET_SQLITE = 20_000  # events/s, issue 7


# -- the table ----------------------------------------------------------------


@dataclass
class Row:
    backend: str
    what: str
    count: int
    seconds: float
    unit: str = "events"
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        backend: str,
        what: str,
        count: int,
        seconds: float,
        unit: str = "events",
        note: str = "",
    ) -> Row:
        row = Row(backend, what, count, seconds, unit, note)
        self.rows.append(row)
        print(f"  {row.backend:<10} {row.what:<48} {row.seconds:8.3f} s", flush=True)
        return row

    def render(self) -> str:
        head = (
            f"{'backend':<10} {'measurement':<48} {'count':>8} {'unit':<9}"
            f" {'seconds':>9} {'per s':>9}  note"
        )
        lines = [head, "-" * len(head)]
        for row in self.rows:
            lines.append(
                f"{row.backend:<10} {row.what:<48} {row.count:>8,} {row.unit:<9}"
                f" {row.seconds:>9.3f} {row.rate:>9,.0f}  {row.note}"
            )
        return "\n".join(lines)


@contextmanager
def profiled(enabled: bool, title: str) -> Iterator[None]:
    """cProfile of the block (main thread only), top functions printed."""
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(14)
        print(f"\n--- profile: {title} (by own time) ---")
        print("\n".join(out.getvalue().splitlines()[4:]))


# -- 1. the apply path --------------------------------------------------------


class Workload:
    """Change sets over ``calendars`` and the expected cache contents."""

    def __init__(self, calendars: int, seed_per_calendar: int, rng: random.Random) -> None:
        self.keys = [f"cal-{i:03d}" for i in range(calendars)]
        self.model: dict[str, dict[str, tuple[datetime, datetime]]] = {k: {} for k in self.keys}
        self._rng = rng
        self._serial = 0
        self.seed = [self._full(key, seed_per_calendar) for key in self.keys]

    def new_times(self) -> tuple[datetime, datetime]:
        start = NOW + timedelta(minutes=15 * self._rng.randrange(4 * 24 * 90))
        return start, start + timedelta(minutes=self._rng.choice((15, 30, 60, 90, 120)))

    def event(self, key: str, source: str, times: tuple[datetime, datetime]) -> RemoteEvent:
        self._serial += 1
        return RemoteEvent(source=source, uid=source.rsplit("/", 1)[1], start=times[0],
                           end=times[1], etag=f'"{self._serial}"')

    def new_source(self, key: str, prefix: str) -> str:
        self._serial += 1
        return f"/calpool/{key}/{prefix}-{self._serial:07d}.ics"

    def _create(self, key: str) -> tuple[str, tuple[RemoteEvent, ...]]:
        source = self.new_source(key, "ev")
        times = self.new_times()
        self.model[key][source] = times
        return source, (self.event(key, source, times),)

    def _full(self, key: str, count: int) -> tuple[str, ChangeSet]:
        objects = dict(self._create(key) for _ in range(count))
        return key, ChangeSet(cursor=f"seed-{key}", objects=objects, full=True)

    def changes(self, key: str, count: int, mix: tuple[float, float]) -> list[tuple[str, str]]:
        """``count`` (kind, source) changes for ``key``; kind is create/move/delete."""
        existing = list(self.model[key])
        self._rng.shuffle(existing)
        planned: list[tuple[str, str]] = []
        for _ in range(count):
            roll = self._rng.random()
            kind = "move" if roll < mix[0] + mix[1] else "delete"
            kind = "create" if roll < mix[0] or not existing else kind
            planned.append((kind, "" if kind == "create" else existing.pop()))
        return planned

    def batch(self, key: str, count: int, mix: tuple[float, float]) -> ChangeSet:
        objects: dict[str, tuple[RemoteEvent, ...]] = {}
        for kind, source in self.changes(key, count, mix):
            if kind == "create":
                new_source, events = self._create(key)
                objects[new_source] = events
            elif kind == "move":
                times = self.new_times()
                self.model[key][source] = times
                objects[source] = (self.event(key, source, times),)
            else:
                del self.model[key][source]
                objects[source] = ()
        return ChangeSet(cursor=f"c{self._serial}", objects=objects)


def timed(function: Callable[..., object], *args: object) -> float:
    began = time.perf_counter()
    function(*args)
    return time.perf_counter() - began


def apply_all(store: Store, batches: Sequence[tuple[str, ChangeSet]]) -> None:
    for key, changes in batches:
        with store.unit_of_work() as uow:
            uow.events.apply_changes(key, changes, WINDOW, synced_at=NOW)
            uow.commit()


def naive_writer(
    store: Store, url: str, work: Workload, count: int, mix: tuple[float, float]
) -> float:
    """One statement and one commit per event, straight on the table."""
    with store.reader() as uow:
        ids = {key: uow.calendars.id_of(key) for key in work.keys}
    plan = [
        (key, *change)
        for key in work.keys
        for change in work.changes(key, count // len(work.keys) + 1, mix)
    ][:count]
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            began = time.perf_counter()
            for key, kind, source in plan:
                where = (busy_events.c.calendar_id == ids[key], busy_events.c.source == source)
                if kind == "create":
                    source = work.new_source(key, "naive")
                    event = work.event(key, source, work.new_times())
                    connection.execute(busy_events.insert().values(
                        calendar_id=ids[key], source=source, instance="", uid=event.uid,
                        start_at=event.start, end_at=event.end, busy=True, etag=event.etag))
                    work.model[key][source] = (event.start, event.end)
                elif kind == "move":
                    start, end = work.new_times()
                    connection.execute(update(busy_events).where(*where)
                                       .values(start_at=start, end_at=end, etag="naive"))
                    work.model[key][source] = (start, end)
                else:
                    connection.execute(delete(busy_events).where(*where))
                    del work.model[key][source]
                connection.commit()
            return time.perf_counter() - began
    finally:
        engine.dispose()


def check_cache(store: Store, work: Workload) -> None:
    with store.reader() as uow:
        for key in work.keys:
            cached = {e.source: (e.start, e.end) for e in uow.events.in_window(key, WINDOW)}
            if cached != work.model[key]:
                missing = len(work.model[key].keys() - cached.keys())
                raise SystemExit(f"cache of {key} differs from the model ({missing} missing)")


def bench_apply(backend: str, url: str, args: argparse.Namespace, table: Table) -> None:
    migrate.upgrade(url)
    mix = (args.creates, args.moves)
    work = Workload(args.apply_calendars, args.seed_per_calendar, random.Random(7))
    keys = work.keys
    sizes = [args.batch] * (args.events // args.batch) + [args.events % args.batch]
    batches = [(keys[i % len(keys)], work.batch(keys[i % len(keys)], size, mix))
               for i, size in enumerate(size for size in sizes if size)]
    changed = sum(len(changes.objects) for _, changes in batches)
    sample = "sample, extrapolated as a rate"
    with Store.open(url) as store:
        with store.unit_of_work() as uow:
            uow.calendars.ensure(keys)
            uow.commit()
        seeded = sum(len(changes.objects) for _, changes in work.seed)
        table.add(backend, f"seed: full listings of {len(keys)} calendars", seeded,
                  timed(apply_all, store, work.seed), note="full=True, 1 transaction each")
        with profiled(args.profile, f"apply path on {backend}"):
            elapsed = timed(apply_all, store, batches)
        note = f"{args.batch:,} objects/transaction"
        if backend == "sqlite":
            verdict = "met" if changed / elapsed >= TARGET_SQLITE else "MISSED"
            note += f"; target {TARGET_SQLITE:,}/s {verdict}"
        bulk = table.add(backend, "apply path: changed events", changed, elapsed, note=note)
        singles = [(key, work.batch(key, 1, mix)) for key in keys
                   for _ in range(max(1, args.baseline_events // len(keys)))]
        single = table.add(backend, "apply path, 1 object/transaction (sample)", len(singles),
                           timed(apply_all, store, singles), note=sample)
        naive = table.add(backend, "naive: 1 statement + commit/event (sample)",
                          args.baseline_events,
                          naive_writer(store, url, work, args.baseline_events, mix), note=sample)
        check_cache(store, work)
    bulk.note += f"; {bulk.rate / naive.rate:.0f}x naive; {bulk.rate / single.rate:.0f}x 1/tx"


# -- 2. sync over a loopback Radicale -----------------------------------------


def ics_object(uid: str, start: datetime, minutes: int, *, weekly: bool) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    rule = "RRULE:FREQ=WEEKLY;COUNT=8\r\n" if weekly else ""
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{NOW.strftime(stamp)}\r\n"
        f"DTSTART:{start.strftime(stamp)}\r\n"
        f"DTEND:{(start + timedelta(minutes=minutes)).strftime(stamp)}\r\n"
        f"{rule}SUMMARY:busy\r\nEND:VEVENT\r\n"
    )


def wrap(body: str) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool//bench//EN\r\n"
    return f"{head}{body}END:VCALENDAR\r\n".encode()


def seed_radicale(server: Server, keys: Sequence[str], per_calendar: int) -> float:
    """One PUT of a whole VCALENDAR per collection; Radicale splits it into
    one item per UID.  (Single-item PUTs cost 10-20 ms each in Radicale 3.9,
    growing with the collection: 20,000 of them take minutes.)"""
    rng = random.Random(11)

    def put(key: str) -> None:
        objects = []
        for n in range(per_calendar):
            start = NOW + timedelta(days=rng.randrange(60), hours=rng.randrange(7, 18))
            objects.append(
                ics_object(
                    f"{key}-{n:04d}@bench", start, rng.choice((30, 60, 90)), weekly=n % 10 == 9
                )
            )
        status, _, body = server.request(
            "PUT", f"{server.home}{key}/", wrap("".join(objects)), {"Content-Type": "text/calendar"}
        )
        if status not in (201, 204):
            raise SystemExit(f"seeding {key}: PUT answered {status}: {body[:200]!r}")

    began = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL_SYNCS) as pool:
        list(pool.map(put, keys))
    return time.perf_counter() - began


@dataclass
class SyncRig:
    store: Store
    service: SyncService
    connector: CalDAVConnector

    def close(self) -> None:
        self.connector.close()
        self.store.close()


def rig(server: Server, keys: Sequence[str], folder: Path, name: str) -> SyncRig:
    url = f"sqlite:///{folder / name}.db"
    migrate.upgrade(url)
    store = Store.open(url)
    with store.unit_of_work() as uow:
        uow.calendars.ensure(keys)
        uow.commit()
    connector = CalDAVConnector(CalDAVAccount(url=server.home))
    bindings = {k: CalendarBinding(k, CalendarRef(f"{k}/", "Europe/Berlin"), connector)
                for k in keys}
    # The defaults of [sync]: one day back, 90 days ahead.
    service = SyncService(store, bindings, window=SyncWindow(timedelta(days=1), timedelta(days=90)),
                          cache=BusyCache(keys), clock=lambda: NOW)
    return SyncRig(store, service, connector)


def sync_all(service: SyncService, keys: Sequence[str], threads: int) -> float:
    began = time.perf_counter()
    if threads <= 1:
        reports = [service.sync_calendar(key) for key in keys]
    else:
        with ThreadPoolExecutor(threads) as pool:
            reports = list(pool.map(service.sync_calendar, keys))
    elapsed = time.perf_counter() - began
    failed = [f"{r.calendar}: {r.outcome} {r.error}" for r in reports if r.outcome != "synced"]
    if failed:
        raise SystemExit("sync failed:\n  " + "\n  ".join(failed[:5]))
    return elapsed


def move_one(server: Server, store: Store, key: str, step: int) -> datetime:
    """Move the first single event of ``key`` to a time no other event has."""
    with store.reader() as uow:
        event = next(e for e in uow.events.in_window(key, WINDOW) if not e.instance)
    start = NOW + timedelta(days=2, seconds=step)  # seeded events start on whole hours
    status, _, body = server.request("PUT", urljoin(server.url, event.source),
                                     wrap(ics_object(event.uid, start, 45, weekly=False)),
                                     {"Content-Type": "text/calendar"})
    if status not in (201, 204):
        raise SystemExit(f"moving {event.source}: PUT answered {status}: {body[:200]!r}")
    return start


def expect_moved(store: Store, key: str, start: datetime) -> None:
    with store.reader() as uow:
        if not any(e.start == start for e in uow.events.in_window(key, WINDOW)):
            raise SystemExit(f"the moved event of {key} did not reach the store")


def bench_caldav(args: argparse.Namespace, table: Table) -> None:
    keys = [f"cal-{i:03d}" for i in range(args.calendars)]
    objects, threads = len(keys) * args.per_calendar, PARALLEL_SYNCS
    with tempfile.TemporaryDirectory(prefix="calpool-bench-") as tmp:
        server = start_radicale(tmp)
        rigs: list[SyncRig] = []

        def fresh(name: str) -> SyncRig:
            rigs.append(rig(server, keys, Path(tmp), name))
            return rigs[-1]

        try:
            seconds = seed_radicale(server, keys, args.per_calendar)
            table.add("radicale", f"seed: {len(keys)} collection PUTs, {threads} threads",
                      objects, seconds, "objects", "setup")
            # Radicale builds its item cache on the first read: pay that here,
            # so the timed syncs all meet a warm server.
            seconds = sync_all(fresh("warm").service, keys, threads)
            table.add("radicale", "warm-up: first listing, server cache cold", objects,
                      seconds, "objects", "setup")
            first = fresh("sequential")
            with profiled(args.profile, "full sync, sequential"):
                seconds = sync_all(first.service, keys, 1)
            with first.store.reader() as uow:
                rows = sum(uow.events.count(key) for key in keys)
            full_seq = table.add("sqlite", "full sync, sequential", objects, seconds, "objects",
                                 f"{rows:,} instances cached")
            second = fresh("parallel")
            full_par = table.add("sqlite", f"full sync, {threads} threads", objects,
                                 sync_all(second.service, keys, threads), "objects")
            target = keys[len(keys) // 2]
            steps = iter(range(1, 1000))

            def moved_then_synced(subset: Sequence[str], workers: int) -> float:
                start = move_one(server, second.store, target, next(steps))
                seconds = sync_all(second.service, subset, workers)
                expect_moved(second.store, target, start)
                return seconds

            passes = []
            for workers in (1, threads):
                with profiled(args.profile and workers == 1, "incremental sync, sequential"):
                    times = [moved_then_synced(keys, workers) for _ in range(args.passes)]
                passes.append(table.add(
                    "sqlite", f"incremental of all, 1 moved, {workers} thr, median {len(times)}",
                    len(keys), statistics.median(times), "calendars"))
            inc_seq, inc_par = passes
            times = [moved_then_synced([target], 1) for _ in range(args.repeats)]
            inc_one = table.add("sqlite", f"incremental of the 1 calendar, median {len(times)}",
                                1, statistics.median(times), "calendars")
        finally:
            for each in rigs:
                each.close()
            server.stop()
    full_seq.note += f"; {full_seq.seconds / inc_seq.seconds:.0f}x the incremental pass"
    full_par.note = (f"{full_seq.seconds / full_par.seconds:.1f}x sequential's speed;"
                     f" {full_par.seconds / inc_par.seconds:.0f}x the incremental pass")
    one_full = full_seq.seconds / len(keys)
    inc_one.note = f"a full sync of one calendar takes ~{one_full / inc_one.seconds:.0f}x this"


# -- main -----------------------------------------------------------------------


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="changed events to apply")
    parser.add_argument("--batch", type=int, default=1_000, help="changed objects per transaction")
    parser.add_argument("--apply-calendars", type=int, default=20)
    parser.add_argument(
        "--seed-per-calendar",
        type=int,
        default=1_000,
        help="events cached per calendar before the changes",
    )
    parser.add_argument("--creates", type=float, default=0.5, help="share of creates")
    parser.add_argument("--moves", type=float, default=0.3, help="share of moves (rest: deletes)")
    parser.add_argument(
        "--baseline-events", type=int, default=2_000, help="sample size of the per-event baselines"
    )
    parser.add_argument("--calendars", type=int, default=100, help="CalDAV calendars")
    parser.add_argument("--per-calendar", type=int, default=200, help="objects per CalDAV calendar")
    parser.add_argument("--passes", type=int, default=3,
                        help="incremental passes over all calendars (median shown)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the one-calendar sync")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-caldav", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the apply paths and the sequential syncs (main thread)",
    )
    args = parser.parse_args(argv)
    if not (args.creates >= 0 and args.moves >= 0 and args.creates + args.moves <= 1):
        parser.error("--creates and --moves are shares: each ≥ 0, together ≤ 1")
    counts = ("events", "batch", "apply_calendars", "baseline_events", "calendars",
              "per_calendar", "passes", "repeats")
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    table = Table()
    print(f"calpool sync benchmark: {args.events:,} changed events in batches of {args.batch:,}")
    # Other work on the machine moves these figures; say how busy it was.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="calpool-bench-") as tmp:
        bench_apply("sqlite", f"sqlite:///{tmp}/apply.db", args, table)
    if not args.skip_postgres:
        try:
            with start_postgres() as server:
                bench_apply("postgresql", server.create_database(), args, table)
        except PostgresStartError as exc:
            print(f"  postgresql skipped: {str(exc).splitlines()[0]}")
    if not args.skip_caldav:
        bench_caldav(args, table)
    print()
    print(table.render())
    print(
        "\nNotes: samples are timed on --baseline-events events and extrapolated as a rate.\n"
        "SQLite runs with WAL and synchronous=FULL (as calpool opens it); the PostgreSQL test\n"
        "server runs with fsync=off and synchronous_commit=off: its commits cost no disk flush.\n"
        "The Radicale calendars hold one weekly series (8 instances) in ten objects.\n"
        f"Load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after,"
        f" on {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
