"""Slot queries through the HTTP hook: requests/s and latency, 100-room case.

One owner and a 100-room pool with 20,000 busy events over 60 days (the
scenario of ``bench/slots.py``) are written to a SQLite store through the
store's ``apply_changes``, as a sync would; the App is built by
``daemon.wiring.build`` and served by a real ``HttpServer`` on loopback.
A second process runs ``--clients`` threads, each with its own keep-alive
httpx client, asking ``GET /v1/event-types/meet/slots`` with the default
one-week window for ``--seconds`` (the target's case: the daemon keeps the
answer, so this is the path of repeated queries between changes).  Then the
same with ``start`` cycling through more windows than the daemon keeps
answers for, so every answer is cut afresh from the slots the daemon keeps
per day (and encoded from each slot's kept encoding; a day no window
covered yet is evaluated).  Measured in the same run, as baselines: the
engine call alone (``SlotService.slots``, in this process: kept, afresh,
and right after a change of one room's busy time, when every day of the
window is evaluated anew), and the bare ``/healthz`` route under the same
load.  CPU time per request is shown for
the server process and the client process, which share the machine.
``--profile`` profiles the server handler of the slot route (in process, on
one thread) and prints the top entries.  ``--gc-freeze`` moves every object
alive after start-up out of the collector's sight (``gc.freeze()``), to show
what the full collections cost the afresh path: the daemon does not do so.

    .venv/bin/python bench/slots_http.py [--clients 4] [--seconds 10] [--profile] [--gc-freeze]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.slots import DAYS, EVENTS, ROOMS, START, ZONE, percentile, scenario
from daemon.config import load_config
from daemon.http.app import create_app
from daemon.http.server import HttpServer
from daemon.wiring import App, build
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.core.zones import from_us
from engine.store import migrate

TOKEN = "bench-token-not-a-secret"
ROUTE = "/v1/event-types/meet/slots"
TARGET_RATE = 300.0
TARGET_P99_MS = 50.0
TARGET_AFRESH_RATE = 250.0  # a different start each request (issue 24, the 100-room pool)


def config_text() -> str:
    """The scenario of ``bench/slots.py`` as a config file."""
    event_type, calendars, pools, _busy = scenario()
    lines = [
        "[daemon]", 'database = "sqlite:///bench.db"', f'timezone = "{ZONE}"', "",
        "[sync]", f'window_future = "{DAYS + 30}d"', "",
        "[[api.tokens]]", 'name = "bench"',
        f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"', 'scopes = ["slots"]', "",
        "[accounts.dav]", 'provider = "caldav"', 'url = "https://dav.invalid/"', "",
    ]
    for key, calendar in calendars.items():
        lines += [f"[calendars.{key}]", 'account = "dav"', f'id = "{key}/"',
                  f'kind = "{calendar.kind.value}"', ""]
    members = ", ".join(f'"{m}"' for m in pools["rooms"].members)
    lines += ["[pools.rooms]", f"members = [{members}]", "",
              f"[event_types.{event_type.key}]", 'title = "Meet"', 'duration = "30m"',
              'step = "15m"', f'owner = "{event_type.owner}"', 'pools = ["rooms"]',
              f'horizon = "{DAYS + 1}d"', ""]
    return "\n".join(lines)


def build_site(folder: Path) -> App:
    path = folder / "calpool.toml"
    path.write_text(config_text(), encoding="utf-8")
    config = load_config(path)
    migrate.upgrade(config.daemon.database_url)
    app = build(config, clock=lambda: START)
    _event_type, _calendars, _pools, busy = scenario()
    window = Interval(START - timedelta(days=1), START + timedelta(days=DAYS + 30))
    with app.store.unit_of_work() as uow:
        for key, spans in busy.items():
            objects = {
                f"{key}-{n}": (RemoteEvent(source=f"{key}-{n}", uid=f"{key}-{n}",
                                           start=from_us(s), end=from_us(e)),)
                for n, (s, e) in enumerate(spans)
            }
            uow.events.apply_changes(key, ChangeSet(cursor="c", objects=objects, full=True),
                                     window, START)
        uow.commit()
    return app


# Window starts for the afresh case: more than SlotService keeps
# (ANSWERS_KEPT), one grid step apart, asked in turn.
FRESH_STARTS = [(START + timedelta(minutes=15 * k)).isoformat() for k in range(64)]


def load(url: str, route: str, clients: int, seconds: float, starts: list[str] | None,
         out: Any) -> None:
    """In the client process: ``clients`` threads asking ``route`` until the
    time is up (with ``start`` from ``starts`` in turn, if given); sends back
    (latencies in ms, elapsed s, bytes of one answer, errors, CPU s)."""
    import httpx

    # httpx replaces a URL's query by ``params``: the route's own query goes in them.
    route, _, query = route.partition("?")
    fixed = dict(parse_qsl(query))
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    size = [0]
    errors = [0]

    def client(index: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30) as http:
            asked = index
            while time.perf_counter() < deadline:
                params = dict(fixed)
                if starts:
                    params["start"] = starts[asked % len(starts)]
                asked += clients
                begin = time.perf_counter()
                response = http.get(route, params=params)
                latencies[index].append((time.perf_counter() - begin) * 1000)
                if response.status_code != 200:
                    errors[0] += 1
                size[0] = len(response.content)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    out.send(([x for per in latencies for x in per], elapsed, size[0], errors[0],
              time.process_time() - cpu))


def run_load(url: str, route: str, clients: int, seconds: float,
             starts: list[str] | None = None) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=load, args=(url, route, clients, seconds, starts, sender))
    process.start()
    # The server runs in this process: its CPU time over the run is the
    # server's (this thread only waits).
    cpu = time.process_time()
    latencies, elapsed, size, errors, client_cpu = receiver.recv()
    server_cpu = time.process_time() - cpu
    process.join(timeout=60)
    if errors:
        raise SystemExit(f"{route}: {errors} answers were not 200")
    count = len(latencies)
    return {"rate": count / elapsed, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "count": count, "bytes": size,
            "server_ms": server_cpu * 1000 / count, "client_ms": client_cpu * 1000 / count}


def engine_alone(app: App, runs: int, *, afresh: bool = False,
                 changed: bool = False) -> list[float]:
    """The engine call for the default window (kept after the first), or,
    ``afresh``, for windows in turn that are never kept long enough; or,
    ``changed``, for the default window right after one room's busy time
    changed (a sync committed an event, then took it away again), so no
    answer or day is kept for the content asked: everything is evaluated."""
    times = []
    window_of_change = Interval(START - timedelta(days=1), START + timedelta(days=DAYS + 30))
    for run in range(runs):
        start = START + timedelta(minutes=15 * (run % len(FRESH_STARTS) if afresh else 0))
        window = Interval(start, start + timedelta(days=7))
        if changed:
            room = f"room-{run % 10:03d}"
            source = f"bench-change-{run}"
            event = RemoteEvent(source=source, uid=source, start=START + timedelta(days=2),
                                end=START + timedelta(days=2, minutes=30))
            with app.store.unit_of_work() as uow:
                uow.events.apply_changes(room, ChangeSet(cursor=f"c{run}", objects={
                    source: (event,) if run % 2 == 0 else ()}), window_of_change, START)
                uow.commit()
            app.cache.reload(app.store, [room])
        begin = time.perf_counter()
        app.slots.slots("meet", window, now=START)
        times.append((time.perf_counter() - begin) * 1000)
    return times


def profile(app: App, runs: int) -> None:
    """Profile the route's own work (handler, engine, document, encoding) on
    this thread; the framework and the socket are what the /healthz
    baseline measures."""
    from daemon.http.auth import Client
    from daemon.http.routes.event_types import event_type_slots

    client = Client("bench", frozenset({"slots"}))
    event_type_slots(app, client, "meet", None, None, None)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        event_type_slots(app, client, "meet", None, None, None)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(18)
    print(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--gc-freeze", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="calpool-bench-") as folder:
        began = time.perf_counter()
        app = build_site(Path(folder))
        api = create_app(app)
        print(f"{ROOMS} rooms + owner, {EVENTS} busy events over {DAYS} days in SQLite "
              f"(written in {time.perf_counter() - began:.1f} s); default one-week window, "
              f"step 15m; {args.clients} client threads in a second process, "
              f"{args.seconds:.0f} s per route")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        engine_alone(app, 3)  # loads the cache
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
            print(f"gc.freeze(): {gc.get_freeze_count()} objects out of the collector's sight")
        engine = engine_alone(app, 100)
        engine_p50 = percentile(engine, 0.5)
        afresh = engine_alone(app, 100, afresh=True)
        changed = engine_alone(app, 100, changed=True)
        for label, times in (("kept", engine), ("afresh", afresh),
                             ("after a change", changed)):
            p50 = percentile(times, 0.5)
            print(f"engine call alone (SlotService.slots), {label:14}  p50 {p50:7.2f} ms   "
                  f"p99 {percentile(times, 0.99):7.2f} ms   ({1000 / p50:6.0f}/s on one "
                  "thread)")
        if args.profile:
            profile(app, 50)
        server = HttpServer(api, host="127.0.0.1", port=0)
        server.start()
        try:
            health = run_load(server.url, "/healthz", args.clients, args.seconds)
            slots = run_load(server.url, ROUTE, args.clients, args.seconds)
            fresh = run_load(server.url, ROUTE, args.clients, args.seconds, FRESH_STARTS)
            fresh_first = run_load(server.url, f"{ROUTE}?rooms=first", args.clients,
                                   args.seconds, FRESH_STARTS)
        finally:
            server.stop()
            app.close()
    for label, figures in (("GET /healthz (baseline)", health), (f"GET {ROUTE}", slots),
                           (f"GET {ROUTE}?start=… (afresh)", fresh),
                           (f"GET {ROUTE}?start=…&rooms=first (afresh)", fresh_first)):
        print(f"{label:50} {figures['rate']:5.0f} req/s   p50 {figures['p50']:6.2f} ms   "
              f"p99 {figures['p99']:6.2f} ms   ({figures['count']:.0f} requests, "
              f"{figures['bytes'] / 1024:.0f} KiB an answer; CPU a request: server "
              f"{figures['server_ms']:.2f} ms, client {figures['client_ms']:.2f} ms)")
    print(f"ratio: slots / healthz throughput {slots['rate'] / health['rate']:.2f}; "
          f"slots p50 / engine p50 {slots['p50'] / engine_p50:.1f}x")
    met = slots["rate"] >= TARGET_RATE and slots["p99"] <= TARGET_P99_MS
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"target, default query (>= {TARGET_RATE:.0f} req/s, p99 <= {TARGET_P99_MS:.0f} ms): "
          f"{'met' if met else 'missed'}")
    for label, figures in (("afresh, rooms=all", fresh), ("afresh, rooms=first", fresh_first)):
        met = figures["rate"] >= TARGET_AFRESH_RATE and figures["p99"] <= TARGET_P99_MS
        print(f"target, {label} (>= {TARGET_AFRESH_RATE:.0f} req/s, p99 <= "
              f"{TARGET_P99_MS:.0f} ms, issue 24): {'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
