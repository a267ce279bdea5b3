"""Model-based cache truth (issue 23): a hypothesis state machine edits a
calendar on the provider behind calpool's back — creates, moves, deletes,
recurring series with moved and cancelled instances and EXDATEs,
transparent and cancelled events — and interleaves syncs by the real sync
service (:mod:`engine.services.sync`) into a real SQLite store, forgotten
cursors and injected faults (no answer in time, 5xx, 429 with a
Retry-After longer than calpool waits, a connection dropped half way
through an answer).

After every sync the cache holds exactly what the provider holds, computed
here independently of calpool: each event rendered as iCalendar
(:func:`tests.contract.ical_text.render`) and expanded by
``recurring_ical_events`` — not by calpool's expansion.  A sync that failed
leaves the cache as the last successful one left it and says why.

One machine, run per connector: the in-memory connector (faults from
:mod:`connectors.memory.faults`; it answers a listing whole, so a dropped
connection is a request nothing answered), and CalDAV on Radicale,
Xandikos and Cyrus (behind :class:`tests.support.fault_proxy.FaultProxy`).
The provider side is the contract suite's drivers.

Steps: ``CALPOOL_MODEL_STEPS`` per connector (default 100: a bounded run
for CI; ``CALPOOL_MODEL_STEPS=1000`` for the long run), in examples of
:data:`STEPS_PER_EXAMPLE` steps on a fresh calendar and store each.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy, SyncMethod
from connectors.memory import MemoryConnector, MemoryProvider
from connectors.memory.faults import Fault, FaultKind, Operation
from connectors.microsoft import MicrosoftConnector
from connectors.microsoft import RetryPolicy as MicrosoftRetry
from engine.core.model import Interval
from engine.ports import CalendarConnector, CalendarRef
from engine.services.sync import CalendarBinding, SyncReport, SyncService, SyncWindow
from engine.store import Store, migrate
from tests.contract.calendar_data import EventSpec, Override, Recurrence
from tests.contract.conftest import (
    CalDAVDriver,
    cyrus_forgets_tokens,
    radicale_forgets_tokens,
)
from tests.contract.graph_driver import GraphDriver, graph_account
from tests.contract.harness import Capability, ProviderSide
from tests.contract.ical_text import render
from tests.contract.memory_driver import MemoryDriver
from tests.fakes.graph import GraphFake
from tests.support.caldav_servers import Server
from tests.support.cyrus import CyrusServer, cyrus_contract_calendar
from tests.support.fault_proxy import FaultProxy, Rule, drop_mid_body, stall, status

ZONE = "Europe/Berlin"
BERLIN = ZoneInfo(ZONE)
# The clock of the first sync: the window is 13 Feb – 30 Apr 2027 (whole
# UTC days), across Berlin's DST change on 28 March; a step may move the
# clock on by a day, and the window with it.
NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)
SYNC_WINDOW = SyncWindow(past=timedelta(days=30), future=timedelta(days=45))
# Events start between these (some outside the window, some across its ends).
FIRST_DAY = date(2027, 2, 8)
DAYS = 85

STEPS = int(os.environ.get("CALPOOL_MODEL_STEPS", "100"))
STEPS_PER_EXAMPLE = 20
TIMEOUT = 1.0  # CalDAV: the account's timeout (a stalled answer costs this)

_runs = itertools.count(1)


# -- the provider's truth, computed without calpool -------------------------------------

Row = tuple[str, datetime, datetime, bool]  # uid, start, end (UTC), busy


def _utc(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=BERLIN)).astimezone(UTC)
    return datetime.combine(value, time(0), BERLIN).astimezone(UTC)


def truth(specs: dict[str, EventSpec], window: Interval) -> Counter[Row]:
    """Every instance of ``specs`` overlapping ``window``, as
    ``recurring_ical_events`` expands their iCalendar rendering (floating
    times and dates in the calendar's zone, Berlin)."""
    rows: Counter[Row] = Counter()
    wide = (window.start - timedelta(days=2), window.end + timedelta(days=2))
    for spec in specs.values():
        calendar = icalendar.Calendar.from_ical(render(spec))
        for component in recurring_ical_events.of(calendar).between(*wide):
            start, end = _utc(component.decoded("DTSTART")), _utc(component.decoded("DTEND"))
            if not (start < window.end and end > window.start):
                continue
            transparent = str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
            cancelled = str(component.get("STATUS", "")).upper() == "CANCELLED"
            rows[(spec.uid, start, end, not (transparent or cancelled))] += 1
    return rows


def cached(store: Store, window: Interval, uid_of: Callable[[str], str] = str) -> Counter[Row]:
    """The cache's rows; ``uid_of`` names each by the uid the case gave it
    (a provider that chooses UIDs itself, Exchange, is translated back)."""
    with store.reader() as uow:
        events = uow.events.in_window("cal", window)
    return Counter(
        (uid_of(e.uid), e.start.astimezone(UTC), e.end.astimezone(UTC), e.busy) for e in events
    )


# -- what the machine generates ----------------------------------------------------------


def _wall(day: int, slot: int) -> datetime:
    """Naive Berlin wall time: ``day`` days after FIRST_DAY, at 07:00 plus
    ``slot`` half hours."""
    return datetime.combine(FIRST_DAY + timedelta(days=day), time(7)) + timedelta(minutes=30 * slot)


starts = st.builds(_wall, st.integers(0, DAYS - 1), st.integers(0, 24))
lengths = st.sampled_from([timedelta(minutes=m) for m in (30, 45, 60, 90, 180)])
flags = st.sampled_from([(False, False)] * 6 + [(True, False), (False, True)])


@st.composite
def singles(draw: st.DrawFn, uid: str) -> EventSpec:
    start, length = draw(starts), draw(lengths)
    transparent, cancelled = draw(flags)
    kind = draw(st.sampled_from(["berlin", "berlin", "utc", "floating", "all-day"]))
    if kind == "all-day":
        first = start.date()
        return EventSpec(uid=uid, start=first, end=first + timedelta(days=draw(st.integers(1, 3))),
                         transparent=transparent, cancelled=cancelled)
    if kind == "floating":
        return EventSpec(uid=uid, start=start, end=start + length, zone=None,
                         transparent=transparent, cancelled=cancelled)
    if kind == "utc":  # an instant, not a wall time
        start_value: datetime = start.replace(tzinfo=BERLIN).astimezone(UTC)
        return EventSpec(uid=uid, start=start_value, end=start_value + length,
                         transparent=transparent, cancelled=cancelled)
    return EventSpec(uid=uid, start=start, end=start + length,
                     transparent=transparent, cancelled=cancelled)


@st.composite
def series(draw: st.DrawFn, uid: str) -> EventSpec:
    start, length = draw(starts), draw(lengths)
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "DAILY;INTERVAL=3"]))
    count = draw(st.integers(2, 12))
    transparent, cancelled = draw(flags)
    return EventSpec(
        uid=uid, start=start, end=start + length,
        recurrence=Recurrence(rule=f"FREQ={freq};COUNT={count}"),
        transparent=transparent, cancelled=cancelled,
        zone_definition=draw(st.booleans()),
    )


def originals(spec: EventSpec) -> list[datetime]:
    """The wall-clock starts the series' rule gives (dateutil)."""
    assert spec.recurrence is not None and isinstance(spec.start, datetime)
    return list(rrulestr(spec.recurrence.rule, dtstart=spec.start))


def free_originals(spec: EventSpec) -> list[datetime]:
    assert spec.recurrence is not None
    taken = set(spec.recurrence.excluded) | {o.original_start for o in spec.recurrence.overrides}
    return [o for o in originals(spec) if o not in taken]


# -- the connectors, each with its provider side and its faults -------------------------


@dataclass
class Site:
    """One connector under test, for one example: a fresh calendar."""

    label: str
    connector: CalendarConnector
    calendar: CalendarRef
    driver: ProviderSide
    # Each fault: name → make the next sync meet it.
    faults: dict[str, Callable[[], None]]
    clear_faults: Callable[[], None]
    close: Callable[[], None] = lambda: None
    injected: Counter[str] = field(default_factory=Counter)
    uid_of: Callable[[str], str] = str  # the provider's UID → the case's


SiteFactory = Callable[[], Site]


def memory_site() -> Site:
    provider = MemoryProvider(accounts=("calpool",))
    calendar = CalendarRef(f"model-{next(_runs)}", ZONE)
    provider.add_calendar(calendar.id)
    reading = frozenset({Operation.LIST, Operation.CHANGES})

    def fault(kind: FaultKind, times: int, retry_after: float | None = None) -> Callable[[], None]:
        return lambda: provider.inject(
            Fault(kind=kind, times=times, operations=reading, retry_after=retry_after)
        )

    # The connector retries a transient failure once at once: one fault is
    # absorbed, two fail the sync.
    faults = {
        "unreachable-once": fault(FaultKind.UNREACHABLE, 1),
        "unreachable": fault(FaultKind.UNREACHABLE, 2),
        "503": fault(FaultKind.UNAVAILABLE, 2),
        "429-retry-after": fault(FaultKind.THROTTLED, 1, retry_after=30),
    }

    def clear() -> None:
        for _ in range(3):  # what a sync left of the faults: none may reach the next
            try:
                provider.admit("calpool", Operation.LIST)
            except Exception:
                continue

    return Site(
        label="memory",
        connector=MemoryConnector(provider),
        calendar=calendar,
        driver=MemoryDriver(provider, calendar),
        faults=faults,
        clear_faults=clear,
    )


def _radicale_forgets(server: Server, raw_url: str) -> Callable[[], None]:
    """The contract's way, where Radicale keeps tokens: a listing anew of
    an unchanged calendar hands out the token it had, and Radicale does not
    always keep a file for it again; then there is nothing to forget."""
    forget = radicale_forgets_tokens(server, raw_url)
    collections = server.log_path.parent / "collections" / "collection-root"
    tokens = collections / raw_url.removeprefix(server.url).strip("/") / ".Radicale.cache"
    tokens = tokens / "sync-token"

    def forget_if_kept() -> None:
        if tokens.is_dir():
            forget()

    return forget_if_kept


def caldav_site(
    server: Server, proxy: FaultProxy, *, forget: str, method: SyncMethod
) -> Site:
    name = f"model-{next(_runs)}"
    retry = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05)
    forget_tokens: Callable[[], None] | None = None
    driver_server: Server = server
    if isinstance(server, CyrusServer):
        case = cyrus_contract_calendar(server, name, sync_method=method, timeout=TIMEOUT,
                                       retry=retry)
        raw_url, calendar_id, account = case.url, case.calendar_id, case.account
        driver_server = case.driver
        if forget == "cyrus":
            forget_tokens = cyrus_forgets_tokens(case)
    else:
        raw_url = server.make_calendar(name)
        calendar_id = f"{name}/"
        account = CalDAVAccount(url=server.home, sync_method=method, timeout=TIMEOUT, retry=retry)
        if forget == "radicale":
            forget_tokens = _radicale_forgets(server, raw_url)
    # calpool goes through the proxy; the driver straight to the server.
    through_proxy = replace(account, url=account.url.replace(server.url, proxy.url))
    connector = CalDAVConnector(through_proxy)
    path = "/" + raw_url.removeprefix(server.url)
    listing = frozenset({"REPORT", "PROPFIND"})

    def aim(action: object, times: int, methods: frozenset[str] = listing) -> Callable[[], None]:
        return lambda: proxy.add(Rule(action, path=path, methods=methods, times=times))  # type: ignore[arg-type]

    # Retried once inside the call: one fault is absorbed, two fail the sync.
    faults = {
        "503-once": aim(status(503, b"unavailable"), 1),
        "503": aim(status(503, b"unavailable"), 2),
        "429-retry-after": aim(status(429, b"slow down", {"Retry-After": "30"}), 1),
        "dropped-mid-listing": aim(drop_mid_body(), 2),
        "dropped-mid-listing-once": aim(drop_mid_body(), 1),
        "no-answer": aim(stall(), 2),
    }

    def close() -> None:
        proxy.clear()
        connector.close()

    return Site(
        label=server.kind,
        connector=connector,
        calendar=CalendarRef(calendar_id, ZONE),
        driver=CalDAVDriver(driver_server, raw_url, account, method=method,
                            forget_tokens=forget_tokens),
        faults=faults,
        clear_faults=proxy.clear,
        close=close,
    )


def graph_site(fake: GraphFake) -> Site:
    """The Microsoft connector on a fresh mailbox of the Graph fake; faults
    answered by the fake in Graph's error shape."""
    mailbox = f"model-{next(_runs)}@contoso.example"
    fake.add_mailbox(mailbox, timezone=ZONE)
    calendar = CalendarRef(mailbox, ZONE)
    account = replace(graph_account(fake), page_size=7,
                      retry=MicrosoftRetry(attempts=2, initial_wait=0.01, max_wait=0.05))
    connector = MicrosoftConnector(account)
    driver = GraphDriver(fake, calendar)
    delta = re.escape(f"/users/{mailbox}/calendarView/delta")

    def aim(status: int, times: int, retry_after: int | None = None) -> Callable[[], None]:
        return lambda: fake.fail(path=delta, status=status, code="Throttled"
                                 if status == 429 else "ServiceUnavailable",
                                 retry_after=retry_after, times=times)

    # Retried once inside the call: one fault is absorbed, two fail the sync
    # (each is used up by the sync that meets it: nothing is left to clear).
    faults = {
        "503-once": aim(503, 1),
        "503": aim(503, 2),
        "504": aim(504, 2),
        "429-retry-after": aim(429, 1, retry_after=30),
    }
    return Site(label="microsoft", connector=connector, calendar=calendar, driver=driver,
                faults=faults, clear_faults=lambda: None, close=connector.close,
                uid_of=lambda uid: driver.uids.get(uid, uid))


# -- the machine -------------------------------------------------------------------------


class CacheTruth(RuleBasedStateMachine):
    """See the module docstring.  ``make_site`` and ``template`` are set per
    connector by :func:`run_machine`."""

    make_site: SiteFactory
    template: Path
    workdir: Path
    totals: Counter[str]

    def __init__(self) -> None:
        super().__init__()
        self.site = self.make_site()
        n = next(_runs)
        path = self.workdir / f"calpool-{n}.db"
        shutil.copyfile(self.template, path)
        self.store = Store.open(f"sqlite:///{path}")
        self.sync = SyncService(
            self.store,
            {"cal": CalendarBinding("cal", self.site.calendar, self.site.connector)},
            window=SYNC_WINDOW,
            clock=lambda: self.now,
        )
        self.now = NOW
        self.specs: dict[str, EventSpec] = {}
        self.synced: Counter[Row] = Counter()  # the truth at the last successful sync
        self.synced_window = SYNC_WINDOW.at(NOW)
        self.last: SyncReport | None = None
        self.counter = itertools.count(1)
        self.prefix = f"e{n}-"
        self.cursor_issued = False  # a sync succeeded since the cursors were last forgotten

    def teardown(self) -> None:
        self.site.close()
        self.store.close()
        self.totals.update(self.site.injected)

    def _uid(self) -> str:
        return f"{self.prefix}{next(self.counter)}"

    def _singles(self) -> list[str]:
        return sorted(u for u, spec in self.specs.items() if spec.recurrence is None)

    def _series(self) -> list[str]:
        return sorted(u for u, spec in self.specs.items() if spec.recurrence is not None)

    def _put(self, spec: EventSpec) -> None:
        self.site.driver.put(spec)
        self.specs[spec.uid] = spec
        self.totals["provider edits"] += 1

    # -- provider side ---------------------------------------------------

    @rule(data=st.data())
    def create_single(self, data: st.DataObject) -> None:
        self.totals["tried create_single"] += 1
        spec = data.draw(singles(self._uid()))
        self._put(spec)

    @rule(data=st.data())
    def create_series(self, data: st.DataObject) -> None:
        self.totals["tried create_series"] += 1
        spec = data.draw(series(self._uid()))
        self._put(spec)

    @precondition(lambda self: self._singles())
    @rule(data=st.data())
    def move_single(self, data: st.DataObject) -> None:
        self.totals["tried move_single"] += 1
        uid = data.draw(st.sampled_from(self._singles()))
        moved = data.draw(singles(uid))
        spec = self.specs[uid]
        if isinstance(moved.start, datetime) == isinstance(spec.start, datetime) and (
            moved.zone == spec.zone
        ):
            self.site.driver.move(uid, moved.start, moved.end)  # new times, as it was put
            self.specs[uid] = replace(spec, start=moved.start, end=moved.end)
            self.totals["provider edits"] += 1
        else:  # another kind of time: stored anew
            self._put(moved)

    @precondition(lambda self: self._series())
    @rule(data=st.data())
    def move_series(self, data: st.DataObject) -> None:
        """A new start and rule for the whole series (its exceptions go, as
        a client drops them when the series is rescheduled)."""
        self.totals["tried move_series"] += 1
        uid = data.draw(st.sampled_from(self._series()))
        self._put(data.draw(series(uid)))

    @precondition(lambda self: self._series())
    @rule(data=st.data())
    def move_instance(self, data: st.DataObject) -> None:
        self.totals["tried move_instance"] += 1
        uid = data.draw(st.sampled_from(self._series()))
        spec = self.specs[uid]
        if not (free := free_originals(spec)):
            return
        assert spec.recurrence is not None
        original = data.draw(st.sampled_from(free))
        shift = timedelta(minutes=30 * data.draw(st.integers(-6, 6).filter(bool)))
        length = data.draw(lengths)
        override = Override(original_start=original, start=original + shift,
                            end=original + shift + length)
        self._put(replace(spec, recurrence=replace(
            spec.recurrence, overrides=(*spec.recurrence.overrides, override))))

    @precondition(lambda self: self._series())
    @rule(data=st.data())
    def cancel_instance(self, data: st.DataObject) -> None:
        self.totals["tried cancel_instance"] += 1
        uid = data.draw(st.sampled_from(self._series()))
        spec = self.specs[uid]
        if not (free := free_originals(spec)):
            return
        assert spec.recurrence is not None and isinstance(spec.end, datetime)
        original = data.draw(st.sampled_from(free))
        length = spec.end - spec.start  # type: ignore[operator]
        override = Override(original_start=original, start=original, end=original + length,
                            cancelled=True)
        self._put(replace(spec, recurrence=replace(
            spec.recurrence, overrides=(*spec.recurrence.overrides, override))))

    @precondition(lambda self: self._series())
    @rule(data=st.data())
    def exclude_instance(self, data: st.DataObject) -> None:
        self.totals["tried exclude_instance"] += 1
        uid = data.draw(st.sampled_from(self._series()))
        spec = self.specs[uid]
        if not (free := free_originals(spec)):
            return
        assert spec.recurrence is not None
        original = data.draw(st.sampled_from(free))
        self._put(replace(spec, recurrence=replace(
            spec.recurrence, excluded=(*spec.recurrence.excluded, original))))

    @precondition(lambda self: self.specs)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.totals["tried delete"] += 1
        uid = data.draw(st.sampled_from(sorted(self.specs)))
        del self.specs[uid]
        self.site.driver.delete(uid)
        self.totals["provider edits"] += 1

    @precondition(
        lambda self: self.cursor_issued
        and Capability.EXPIRE_CURSOR not in self.site.driver.unsupported
    )
    @rule()
    def expire_cursor(self) -> None:
        self.site.driver.expire_cursor()
        self.cursor_issued = False
        self.site.injected["cursor expired"] += 1

    # -- calpool side ----------------------------------------------------

    @initialize()
    def first_sync(self) -> None:
        self.do_sync()

    @rule()
    def do_sync(self) -> None:
        self._sync()

    @rule(data=st.data())
    def sync_meeting_a_fault(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.site.faults)))
        self.site.faults[name]()
        self.site.injected[f"fault {name}"] += 1
        try:
            self._sync()
        finally:
            self.site.clear_faults()

    @property
    def window(self) -> Interval:
        return SYNC_WINDOW.at(self.now)

    @precondition(lambda self: self.now < NOW + timedelta(days=10))
    @rule()
    def next_day(self) -> None:
        """Midnight passes: the next sync lists the moved window."""
        self.now += timedelta(days=1)
        self.site.injected["window moved a day"] += 1

    @rule()
    def full_sync(self) -> None:
        self._sync(full=True)

    def _sync(self, *, full: bool = False) -> None:
        report = self.sync.sync_calendar("cal", full=full)
        self.last = report
        self.totals[f"syncs {report.outcome}"] += 1
        if report.outcome == "synced":
            assert report.unreadable == 0, report.last_unreadable
            self.synced_window = self.window
            self.synced = truth(self.specs, self.window)
            self.cursor_issued = True
        else:
            assert report.outcome == "failed", report
            assert report.error and "\n" not in report.error
            with self.store.reader() as uow:
                state = uow.calendars.sync_state("cal")
            assert state is not None and state.failed and state.last_error == report.error

    @invariant()
    def cache_is_the_truth_of_the_last_successful_sync(self) -> None:
        self.totals["steps"] += 1  # invariants run after every step (and the first sync)
        if self.last is None:
            return
        have, want = cached(self.store, self.synced_window, self.site.uid_of), self.synced
        if have != want:
            missing = sorted((want - have).elements())[:5]
            extra = sorted((have - want).elements())[:5]
            raise AssertionError(
                f"{self.site.label}: cache differs from the provider after {self.last}: "
                f"missing {missing}, extra {extra}"
            )


def run_machine(make_site: SiteFactory, template: Path, workdir: Path) -> Counter[str]:
    totals: Counter[str] = Counter()
    machine = type(
        "CacheTruthOf", (CacheTruth,),
        {"make_site": staticmethod(make_site), "template": template, "workdir": workdir,
         "totals": totals},
    )
    # Hypothesis runs an example for up to STEPS_PER_EXAMPLE steps (fewer at
    # times): a quarter more examples make the steps asked for, about.
    examples = max(1, -(-STEPS * 5 // (4 * STEPS_PER_EXAMPLE)))
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            print_blob=True,
        ),
    )
    return totals


# -- one test per connector --------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model-schema") / "calpool.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def proxy_for(request: pytest.FixtureRequest) -> Iterator[Callable[[Server], FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(server: Server) -> FaultProxy:
        proxy = FaultProxy(server.url)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


def _report(label: str, totals: Counter[str]) -> None:
    figures = ", ".join(f"{k}: {v}" for k, v in sorted(totals.items()))
    print(f"\n[cache truth] {label}: {STEPS} steps asked; {figures}")


def test_memory_cache_is_the_providers_truth(template: Path, tmp_path: Path) -> None:
    _report("memory", run_machine(memory_site, template, tmp_path))


@pytest.fixture(scope="module")
def graph_fake() -> Iterator[GraphFake]:
    with GraphFake() as fake:
        yield fake


def test_microsoft_cache_is_the_providers_truth(
    graph_fake: GraphFake, template: Path, tmp_path: Path
) -> None:
    _report("microsoft", run_machine(lambda: graph_site(graph_fake), template, tmp_path))


CALDAV = [
    pytest.param("radicale", "radicale", SyncMethod.SYNC_COLLECTION, id="radicale"),
    pytest.param("radicale", "", SyncMethod.ETAG, id="radicale-etag"),
    pytest.param("xandikos", "", SyncMethod.SYNC_COLLECTION, id="xandikos"),
    pytest.param("cyrus_one_owner", "cyrus", SyncMethod.SYNC_COLLECTION, id="cyrus"),
]


@pytest.mark.parametrize(("server_name", "forget", "method"), CALDAV)
def test_caldav_cache_is_the_providers_truth(
    request: pytest.FixtureRequest,
    proxy_for: Callable[[Server], FaultProxy],
    template: Path,
    tmp_path: Path,
    server_name: str,
    forget: str,
    method: SyncMethod,
) -> None:
    server: Server = request.getfixturevalue(server_name)
    proxy = proxy_for(server)
    totals = run_machine(
        lambda: caldav_site(server, proxy, forget=forget, method=method),
        template,
        tmp_path,
    )
    _report(f"{server_name} {method.value}", totals)
