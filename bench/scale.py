"""An office-sized site (issue 24): 500 calendars on a loopback Radicale.

20 owners and 480 rooms in 8 pools of 60; 60,000 events over 90 days, a
tenth of them weekly series (4 instances).  The objects are written straight
into Radicale's storage folder (``collection-root/calpool/<calendar>/`` with
its ``.Radicale.props`` and one ``.ics`` file per object) before the server
starts: 60,000 PUTs would take many minutes, and Radicale reads a folder it
did not write as its own (it builds its item cache on the first read, which
the warm-up pays).

Measured, each beside a baseline from the same run:

1. The limit: the same objects fetched from the same warm server with bare
   ``calendar-query`` REPORTs (one a calendar, 4 at a time, as calpool
   syncs), the answers read and not parsed: the server's own serving time.
2. ``calpool sync`` (the console script, on SQLite), first full sync: wall
   time against the limit, and the instances cached against the generator's
   count.  Then an incremental pass of all calendars after 50 objects
   changed (PUT), and one with none.
3. ``calpool run`` on a fresh database: its first pass, its RSS after it;
   slot queries afresh over HTTP (4 client threads in another process, a
   different ``start`` each request, one week, an owner with a 60-room pool;
   each answer is cut from the slots the daemon keeps per day, so a day is
   evaluated once per content: ``bench/slots_http.py`` also times the call
   right after a change) while idle, with ``/healthz`` as the baseline.  Then ``calpool run``
   again on the synced database, past its start-up pass, with the phased
   polls running (``--poll-interval``, default 5m as ``[sync]`` ships) and a
   change PUT every second: the same query during polling, and RSS after.
4. Growth: the engine's slot search for one owner and a 60-room pool over one
   week with 1x, 2x, 4x, 8x the events per calendar (in process).

    .venv/bin/python bench/scale.py [--quick] [--seconds 15] [--poll-interval 5m]

``--quick``: 50 calendars (2 owners, 48 rooms in 2 pools of 24), 6,000
events, 5 s of load, for a fast check.  Targets (2 cores): first full sync
<= 60 s and <= 1.5x the limit; incremental pass with 50 changes <= 5 s; RSS
after the first sync <= 150 MB; slots afresh >= 400 req/s, p99 <= 50 ms, and
p99 during polling <= 1.5x idle; growth linear or better.  The hour-long
soak (RSS <= 160 MB after 1 hour of polling with changes) is the same
second daemon run with ``--soak 3600``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.slots import percentile
from bench.slots_http import TOKEN, load
from tests.support.caldav_servers import Server, free_port, start_radicale

CALPOOL = Path(sys.executable).parent / "calpool"
ZONE = "Europe/Berlin"
STAMP = "%Y%m%dT%H%M%SZ"
THREADS = 4  # calpool sync's PARALLEL_SYNCS
TARGET_FULL_S, TARGET_FULL_RATIO, TARGET_INC_S, TARGET_RSS_MB = 60.0, 1.5, 5.0, 150.0
TARGET_RATE, TARGET_P99_MS, TARGET_POLL_RATIO = 400.0, 50.0, 1.5


@dataclass
class Site:
    owners: list[str]
    pools: dict[str, list[str]]
    events: int
    days: int = 90
    today: datetime = field(default_factory=lambda: datetime.now(UTC).replace(
        hour=0, minute=0, second=0, microsecond=0))

    @property
    def keys(self) -> list[str]:
        return [*self.owners, *(room for members in self.pools.values() for room in members)]


def site_of(quick: bool) -> Site:
    owners, pools, per_pool, events = (2, 2, 24, 6_000) if quick else (20, 8, 60, 60_000)
    return Site([f"owner-{n:02d}" for n in range(owners)],
                {f"pool-{p}": [f"room-{p}-{n:02d}" for n in range(per_pool)]
                 for p in range(pools)}, events)


# -- the objects ------------------------------------------------------------------


def ics(uid: str, start: datetime, minutes: int, weekly: bool) -> str:
    rule = "RRULE:FREQ=WEEKLY;COUNT=4\r\n" if weekly else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool//bench scale//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start.strftime(STAMP)}\r\n"
        f"DTEND:{(start + timedelta(minutes=minutes)).strftime(STAMP)}\r\n"
        f"{rule}SUMMARY:busy\r\nDESCRIPTION:booked by the bench\\, nothing more\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def event_start(site: Site, rng: random.Random, weekly: bool) -> datetime:
    # A series' 4 weekly instances all lie in the window.
    day = rng.randrange(site.days - 22 if weekly else site.days)
    return site.today + timedelta(days=day + 1, hours=rng.randrange(6, 17),
                                  minutes=15 * rng.randrange(4))


def write_storage(root: Path, site: Site) -> tuple[int, dict[str, list[str]]]:
    """The objects as Radicale's own files; returns the instances expected
    and each calendar's object names."""
    rng = random.Random(24)
    keys = site.keys
    instances, names = 0, {key: [] for key in keys}
    home = root / "radicale" / "collections" / "collection-root" / "calpool"
    for key in keys:
        folder = home / key
        folder.mkdir(parents=True)
        (folder / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR"}))
    for n in range(site.events):
        key = keys[n % len(keys)]
        weekly = n % 10 == 9
        uid = f"{key}-{n:06d}"
        (home / key / f"{uid}.ics").write_text(
            ics(uid, event_start(site, rng, weekly), rng.choice((30, 60, 90, 120)), weekly),
            newline="")
        names[key].append(uid)
        instances += 4 if weekly else 1
    return instances, names


# -- 1. the limit: bare REPORTs ------------------------------------------------------


def query_body(site: Site) -> bytes:
    start = (site.today - timedelta(days=1)).strftime(STAMP)
    end = (site.today + timedelta(days=site.days + 1)).strftime(STAMP)
    return (
        '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/>'
        '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter>'
        "</C:filter></C:calendar-query>"
    ).encode()


def bare_reports(server: Server, site: Site) -> tuple[float, int]:
    """Every calendar's window by calendar-query, 4 at a time; (seconds, bytes)."""
    body = query_body(site)
    local = threading.local()

    def fetch(key: str) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120, trust_env=False)
        response = local.client.request(
            "REPORT", f"{server.home}{key}/", content=body,
            headers={"Depth": "1", "Content-Type": "application/xml"})
        if response.status_code != 207:
            raise SystemExit(f"REPORT {key}: {response.status_code}")
        return len(response.content)

    began = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        size = sum(pool.map(fetch, site.keys))
    return time.perf_counter() - began, size


SYNC_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>"
)
_HREF = re.compile(rb"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")
_TOKEN = re.compile(rb"<(?:\w+:)?sync-token>([^<]+)</(?:\w+:)?sync-token>")


PROPFIND_TOKENS = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
    b"<D:prop><D:sync-token/></D:prop></D:propfind>"
)
_RESPONSE = re.compile(rb"<(?:\w+:)?response>(.*?)</(?:\w+:)?response>", re.S)


def bare_probe(server: Server, site: Site) -> tuple[float, dict[str, str]]:
    """The first request of calpool's incremental pass, without calpool: one
    depth-1 PROPFIND of every calendar's sync token below the home;
    (seconds, token by calendar key)."""
    began = time.perf_counter()
    with httpx.Client(timeout=600, trust_env=False) as client:
        answer = client.request("PROPFIND", server.home, content=PROPFIND_TOKENS,
                                headers={"Depth": "1", "Content-Type": "application/xml"})
    seconds = time.perf_counter() - began
    if answer.status_code != 207:
        raise SystemExit(f"PROPFIND {server.home}: {answer.status_code}")
    found: dict[str, str] = {}
    for response in _RESPONSE.findall(answer.content):
        href, token = _HREF.search(response), _TOKEN.search(response)
        if href and token:
            found[href.group(1).decode().rstrip("/").rsplit("/", 1)[-1]] = token.group(1).decode()
    return seconds, found


def bare_pattern(server: Server, site: Site, tokens: dict[str, str]) -> float:
    """calpool's own requests without calpool: per calendar a sync-collection
    REPORT that asks the members' calendar-data too (from the token in
    ``tokens``, "" the first time) and, where the answer came without the
    data, one calendar-multiget of every href it lists; answers read, hrefs
    and tokens found by a regex, no iCalendar parsed.  Fills ``tokens``."""
    local = threading.local()

    def fetch(key: str) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120, trust_env=False)
        url = f"{server.home}{key}/"
        answer = local.client.request(
            "REPORT", url, content=SYNC_BODY.format(token=tokens.get(key, "")).encode(),
            headers={"Depth": "1", "Content-Type": "application/xml"})
        if answer.status_code != 207:
            raise SystemExit(f"sync-collection {key}: {answer.status_code}")
        found = _TOKEN.search(answer.content)
        tokens[key] = found.group(1).decode() if found else ""
        hrefs = [h.decode() for h in _HREF.findall(answer.content) if h.endswith(b".ics")]
        if hrefs and b"BEGIN:VCALENDAR" not in answer.content:
            refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
            multiget = local.client.request(
                "REPORT", url, headers={"Depth": "1", "Content-Type": "application/xml"},
                content=('<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget '
                         'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
                         f"<D:getetag/><C:calendar-data/></D:prop>{refs}"
                         "</C:calendar-multiget>").encode())
            if multiget.status_code != 207:
                raise SystemExit(f"multiget {key}: {multiget.status_code}")

    began = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(fetch, site.keys))
    return time.perf_counter() - began


# -- the config ----------------------------------------------------------------------


def config_text(site: Site, server: Server, *, database: str, port: int,
                poll_interval: str) -> str:
    lines = [
        "[daemon]", f'database = "sqlite:///{database}"', f'timezone = "{ZONE}"',
        'log_level = "info"', "",
        "[http]", f'listen = "127.0.0.1:{port}"', "",
        "[sync]", f'poll_interval = "{poll_interval}"', 'window_future = "90d"', "",
        "[[api.tokens]]", 'name = "bench"',
        f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"', 'scopes = ["slots"]', "",
        "[accounts.dav]", 'provider = "caldav"', f'url = "{server.home}"', "",
    ]
    for key in site.owners:
        lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "{key}/"', 'kind = "person"',
                  'working_hours = { mon-fri = "08:00-18:00" }', ""]
    for members in site.pools.values():
        for key in members:
            lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "{key}/"',
                      'kind = "room"', ""]
    for pool, members in site.pools.items():
        lines += [f"[pools.{pool}]", "members = [" + ", ".join(f'"{m}"' for m in members) + "]",
                  ""]
    pool_keys = list(site.pools)
    for n, owner in enumerate(site.owners):
        lines += [f"[event_types.meet-{n:02d}]", 'title = "Meet"', 'duration = "30m"',
                  'step = "15m"', f'owner = "{owner}"',
                  f'pools = ["{pool_keys[n % len(pool_keys)]}"]', 'horizon = "85d"', ""]
    return "\n".join(lines)


def calpool(config: Path, *argv: str, timeout: float = 1800) -> tuple[float, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CALPOOL_CONFIG",)}
    began = time.perf_counter()
    result = subprocess.run([str(CALPOOL), "--config", str(config), *argv], capture_output=True,
                            text=True, timeout=timeout, env=env, check=False)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"calpool {' '.join(argv)}: exit {result.returncode}\n"
                         f"{result.stderr[-3000:]}")
    return seconds, result.stdout, result.stderr


def cached_instances(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM busy_events").fetchone()[0])


def change_objects(server: Server, site: Site, names: dict[str, list[str]], count: int,
                   rng: random.Random) -> None:
    """``count`` objects moved (PUT with new times), each in a random calendar."""
    for _ in range(count):
        key = rng.choice(site.keys)
        uid = rng.choice(names[key])
        status, _, body = server.request(
            "PUT", f"{server.home}{key}/{uid}.ics",
            ics(uid, event_start(site, rng, False), 45, False).encode(),
            {"Content-Type": "text/calendar"})
        if status not in (201, 204):
            raise SystemExit(f"PUT {key}/{uid}: {status} {body[:200]!r}")


# -- 3. the daemon -------------------------------------------------------------------


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("CALPOOL_CONFIG", "NOTIFY_SOCKET")}
        self.log = log
        self._file = log.open("w")
        self.began = time.perf_counter()
        self.process = subprocess.Popen([str(CALPOOL), "--config", str(config), "run"],
                                        stdout=self._file, stderr=subprocess.STDOUT, env=env)

    def wait_for(self, pattern: str, timeout: float = 1800) -> float:
        """Seconds since start when a log line matches ``pattern``."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"calpool run exited: {self.log.read_text()[-3000:]}")
            if regex.search(self.log.read_text()):
                return time.perf_counter() - self.began
            time.sleep(0.2)
        raise SystemExit(f"calpool run: no {pattern!r} in {timeout:.0f} s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()


def slot_load(url: str, route: str, seconds: float, clients: int,
              starts: list[str] | None) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=load, args=(url, route, clients, seconds, starts, sender))
    process.start()
    latencies, elapsed, size, errors, _cpu = receiver.recv()
    process.join(timeout=60)
    if errors:
        raise SystemExit(f"{route}: {errors} answers were not 200")
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "count": len(latencies), "bytes": size}


def fresh_starts(site: Site) -> list[str]:
    """64 one-week windows (more than the daemon keeps), 15 minutes apart,
    from next Monday 08:00 UTC."""
    monday = site.today + timedelta(days=7 - site.today.weekday())
    return [(monday + timedelta(hours=8, minutes=15 * k)).isoformat() for k in range(64)]


def line(label: str, figures: dict[str, float]) -> str:
    return (f"  {label:44} {figures['rate']:6.0f} req/s   p50 {figures['p50']:6.1f} ms   "
            f"p99 {figures['p99']:6.1f} ms   ({figures['count']:.0f} requests, "
            f"{figures['bytes'] / 1024:.0f} KiB an answer)")


# -- 4. growth -----------------------------------------------------------------------


def growth(site: Site, factors: Sequence[int] = (1, 2, 4, 8)) -> list[tuple[int, int, float]]:
    """The engine's one-week search, afresh, at ``factors`` times the events
    per calendar; (factor, busy intervals in the week, median ms)."""
    from engine.core.busy import BusyTimeline
    from engine.core.model import Calendar, CalendarKind, EventType, Interval, Pool
    from engine.core.slots import find_slots
    from engine.core.zones import to_us

    rooms = next(iter(site.pools.values()))
    owner = site.owners[0]
    calendars = {owner: Calendar(owner, CalendarKind.PERSON, ZONE)}
    calendars.update({r: Calendar(r, CalendarKind.ROOM, ZONE) for r in rooms})
    pools = {"p": Pool("p", tuple(rooms))}
    event_type = EventType(key="meet", title="Meet", owner=owner, pools=("p",),
                           duration=timedelta(minutes=30), step=timedelta(minutes=15),
                           horizon=timedelta(days=85))
    per_calendar = site.events * 1.3 / len(site.keys)  # instances: a tenth are 4
    base = site.today + timedelta(days=1)
    results = []
    for factor in factors:
        rng = random.Random(factor)
        busy = {}
        in_week = 0
        for key in calendars:
            spans = []
            for _ in range(int(per_calendar * factor)):
                start = base + timedelta(days=rng.randrange(site.days),
                                         hours=rng.randrange(6, 17), minutes=15 * rng.randrange(4))
                spans.append((to_us(start), to_us(start + timedelta(minutes=rng.choice(
                    (30, 60, 90, 120))))))
            spans.sort()
            busy[key] = BusyTimeline([s for s, _ in spans], [e for _, e in spans])
            in_week += sum(1 for s, _ in spans if s < to_us(base + timedelta(days=7)))
        times = []
        for k in range(40):
            start = base + timedelta(minutes=15 * k)
            window = Interval(start, start + timedelta(days=7))
            began = time.perf_counter()
            find_slots(event_type, calendars=calendars, pools=pools, busy=busy, bookings=(),
                       window=window, now=base)
            times.append((time.perf_counter() - began) * 1000)
        results.append((factor, in_week, statistics.median(times)))
    return results


# -- main ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 calendars, 6,000 events")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of each slot load")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--poll-interval", default="5m", help="[sync] poll_interval while polling")
    parser.add_argument("--soak", type=float, default=0.0,
                        help="seconds of polling with changes before the last RSS")
    parser.add_argument("--keep", action="store_true", help="keep the folder (printed)")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    site = site_of(args.quick)
    folder = Path(tempfile.mkdtemp(prefix="calpool-scale-"))
    load_before = os.getloadavg()
    print(f"calpool scale bench: {len(site.keys)} calendars ({len(site.owners)} owners, "
          f"{sum(map(len, site.pools.values()))} rooms in {len(site.pools)} pools), "
          f"{site.events:,} events over {site.days} days, a tenth weekly x4")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} "
          f"on {os.cpu_count()} cores")
    server = None
    daemons: list[Daemon] = []
    report: list[str] = []
    try:
        began = time.perf_counter()
        expected, names = write_storage(folder, site)
        print(f"  storage written straight into Radicale's folder: "
              f"{time.perf_counter() - began:.1f} s ({expected:,} instances expected)")
        server = start_radicale(folder)
        warm, size = bare_reports(server, site)
        print(f"  warm-up: bare REPORTs, server cache cold: {warm:.1f} s ({size / 2**20:.0f} MiB)")
        limit, _ = bare_reports(server, site)
        print(f"  limit: bare REPORTs of all calendars, warm, {THREADS} at a time: {limit:.1f} s")
        tokens: dict[str, str] = {}
        pattern_cold = bare_pattern(server, site, tokens)
        pattern = bare_pattern(server, site, {})
        pattern_none = bare_pattern(server, site, tokens)
        print(f"  calpool's request pattern alone (sync-collection with calendar-data, "
              f"no parsing): "
              f"{pattern:.1f} s ({pattern_cold:.1f} s the first time: Radicale builds its "
              f"sync history); incremental, nothing changed: {pattern_none:.1f} s")

        config = folder / "calpool.toml"
        config.write_text(config_text(site, server, database=str(folder / "sync.db"),
                                      port=free_port(), poll_interval="1h"))
        calpool(config, "db", "upgrade")
        startup, _, _ = calpool(config, "check-config")
        print(f"  baseline: calpool check-config (interpreter start, imports, config): "
              f"{startup:.1f} s")
        # Only the waited-for children count here (Radicale still runs): the
        # CPU of calpool sync alone, which says whether parsing bounds it.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        full, _out, err = calpool(config, "sync", "--full")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cached = cached_instances(folder / "sync.db")
        progress = [x for x in err.splitlines() if "calendars synced" in x]
        print(f"  calpool sync --full (first): {full:.1f} s = {full / limit:.2f}x the limit; "
              f"{cached:,} instances cached ({'all' if cached == expected else 'WRONG'})")
        print(f"    calpool's own CPU: {cpu:.1f} s user+sys over {full:.1f} s wall "
              f"({cpu / full:.2f} cores busy; the parsing holds the GIL)")
        print(f"    its progress lines (not a terminal): {len(progress)}, last: "
              f"{progress[-1] if progress else '-'}")
        rng = random.Random(50)
        change_objects(server, site, names, 50, rng)
        # calpool's incremental pass bare: the PROPFIND of the sync tokens,
        # then sync-collection (+ multiget) of the calendars whose token moved.
        probe, now_tokens = bare_probe(server, site)
        moved = Site(owners=[k for k in site.keys if now_tokens.get(k) != tokens.get(k)],
                     pools={}, events=0)
        bare_inc = probe + bare_pattern(server, moved, dict(tokens))
        every = bare_pattern(server, site, dict(tokens))
        incremental, _, _ = calpool(config, "sync")
        unchanged, _, _ = calpool(config, "sync")
        print(f"  calpool sync, incremental after 50 changes: {incremental:.1f} s; "
              f"with none: {unchanged:.1f} s (the same requests bare: {bare_inc:.1f} s = "
              f"the PROPFIND of {len(now_tokens)} sync tokens {probe:.1f} s + "
              f"{len(moved.keys)} changed calendars; sync-collection of every calendar "
              f"instead: {every:.1f} s)")
        report += [
            f"first full sync {full:.1f} s (target <= {TARGET_FULL_S:.0f} s: "
            f"{verdict(full <= TARGET_FULL_S)}); {full / limit:.2f}x the limit "
            f"{limit:.1f} s (target <= {TARGET_FULL_RATIO}x: "
            f"{verdict(full <= TARGET_FULL_RATIO * limit)}); calpool's request pattern alone "
            f"{pattern:.1f} s",
            f"incremental pass, 50 changes {incremental:.1f} s (target <= {TARGET_INC_S:.0f} s: "
            f"{verdict(incremental <= TARGET_INC_S)}); the same requests bare {bare_inc:.1f} s",
        ]

        # The daemon on a fresh database: its first pass, RSS, slots while idle.
        port = free_port()
        run_config = folder / "run.toml"
        run_config.write_text(config_text(site, server, database=str(folder / "run.db"),
                                          port=port, poll_interval="1h"))
        calpool(run_config, "db", "upgrade")
        daemon = Daemon(run_config, folder / "run-1.log")
        daemons.append(daemon)
        first_pass = daemon.wait_for(r"first sync: \d+ calendars synced")
        rss_first = daemon.rss_mb()
        url, route = f"http://127.0.0.1:{port}", "/v1/event-types/meet-00/slots"
        starts = fresh_starts(site)
        slot_load(url, route, 2, args.clients, starts)  # warm: caches, first answers
        health = slot_load(url, "/healthz", seconds, args.clients, None)
        idle = slot_load(url, route, seconds, args.clients, starts)
        summary = [x for x in daemon.log.read_text().splitlines() if "first sync: " in x]
        daemon.stop()
        print(f"  calpool run, first pass: {first_pass:.1f} s to its summary line; "
              f"RSS {rss_first:.0f} MB")
        print(f"    {summary[-1].split('calpool.sync: ')[-1] if summary else '-'}")
        print(line("GET /healthz (baseline), idle", health))
        print(line("slots afresh, 60-room pool, one week, idle", idle))

        # Again on the synced database, polls running, a change every second.
        run_config.write_text(config_text(site, server, database=str(folder / "run.db"),
                                          port=port, poll_interval=args.poll_interval))
        daemon = Daemon(run_config, folder / "run-2.log")
        daemons.append(daemon)
        # Its start-up pass (every calendar once, within ~10 s) first; then
        # only the phased polls run.
        daemon.wait_for(r"first sync: \d+ calendars synced")
        stop = threading.Event()

        def changes() -> None:
            moving = random.Random(7)
            while not stop.wait(1.0):
                change_objects(server, site, names, 1, moving)

        changer = threading.Thread(target=changes, daemon=True)
        changer.start()
        slot_load(url, route, 2, args.clients, starts)
        polling = slot_load(url, route, seconds, args.clients, starts)
        if args.soak > seconds:
            time.sleep(args.soak - seconds)
        stop.set()
        changer.join()
        rss_polling = daemon.rss_mb()
        daemon.stop()
        print(line(f"slots afresh, during polling ({args.poll_interval})", polling))
        print(f"  RSS after {max(args.soak, seconds + 2):.0f} s of polling with a change a second: "
              f"{rss_polling:.0f} MB")
        ratio = polling["p99"] / idle["p99"]
        report += [
            f"RSS after the first sync {rss_first:.0f} MB (target <= {TARGET_RSS_MB:.0f}: "
            f"{verdict(rss_first <= TARGET_RSS_MB)}); after polling {rss_polling:.0f} MB",
            f"slots afresh idle {idle['rate']:.0f} req/s, p99 {idle['p99']:.1f} ms (target >= "
            f"{TARGET_RATE:.0f}, <= {TARGET_P99_MS:.0f} ms: "
            f"{verdict(idle['rate'] >= TARGET_RATE and idle['p99'] <= TARGET_P99_MS)}); "
            f"/healthz {health['rate']:.0f} req/s",
            f"slots p99 during polling {polling['p99']:.1f} ms = {ratio:.2f}x idle (target <= "
            f"{TARGET_POLL_RATIO}x: {verdict(ratio <= TARGET_POLL_RATIO)})",
        ]

        rows = growth(site)
        base_ms = rows[0][2]
        print("  growth: engine, one week, owner + 60-room pool, afresh (median of 40)")
        for factor, in_week, ms in rows:
            print(f"    {factor}x events: {in_week:6,} busy intervals in the week  {ms:7.2f} ms"
                  f"  ratio {ms / base_ms:4.2f} (events ratio {factor})")
        linear = all(ms / base_ms <= factor * 1.1 for factor, _, ms in rows)
        report.append(f"growth 8x events -> {rows[-1][2] / base_ms:.2f}x time (linear or better: "
                      f"{verdict(linear)})")
    finally:
        for daemon in daemons:
            daemon.stop()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print("\nsummary:")
    for entry in report:
        print(f"  {entry}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (figures move with it)")


if __name__ == "__main__":
    main()
