"""One run of ``calpool demo``: set the site up, serve it, tear it down.

Order matters for the ten-second promise: Radicale and the seeding take a
second, the migration and the first sync of every calendar another; the
banner is printed only after that sync, so the first slot query already sees
the sample busy time.  SIGINT and SIGTERM only set an event, at any point;
teardown runs in reverse order of setup (daemon, Radicale, folder).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from daemon.commands.token import new_token
from daemon.config import load_config
from daemon.demo import sample
from daemon.demo.banner import Site, banner
from daemon.demo.radicale import CalDavServer, CalDavServerError
from daemon.http.server import HttpServerError
from daemon.logs import configure
from daemon.process import Daemon, stop_on_signals
from daemon.wiring import App, build
from engine.core.model import Interval
from engine.store import migrate

log = logging.getLogger("calpool.demo")

HOST = "127.0.0.1"
DEFAULT_PORT = 8740
PORTS_TO_TRY = 100
SEED_WORKERS = 4


class DemoFailed(Exception):
    """The demo cannot run; the message is the one sentence to show."""


def run_demo(port: int | None, out: TextIO, err: TextIO) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop."""
    chosen = _choose_port(port)
    _bypass_proxies_for_loopback()
    stop = threading.Event()
    with ExitStack() as teardown, stop_on_signals(stop.set):
        folder = Path(tempfile.mkdtemp(prefix="calpool-demo-"))
        teardown.callback(shutil.rmtree, folder, ignore_errors=True)
        config_path = folder / "calpool.toml"
        token, digest = new_token()
        try:
            server = CalDavServer.start(folder)
        except CalDavServerError as exc:
            raise DemoFailed(str(exc)) from None
        teardown.callback(server.stop)
        _seed(server)
        config_path.write_text(
            sample.config_text(caldav_home=server.home, port=chosen, token_sha256=digest),
            encoding="utf-8",
        )
        config = load_config(config_path)
        configure(config.daemon.log_format, config.daemon.log_level, err)
        migrate.upgrade(config.daemon.database_url)
        app = build(config)
        teardown.callback(app.close)
        _first_sync(app)
        try:
            daemon = Daemon(app)
        except HttpServerError as exc:  # the port was taken since it was chosen
            raise DemoFailed(str(exc)) from None
        teardown.callback(daemon.stop)
        daemon.start()
        assert daemon.http is not None
        link = app.links.create(sample.EVENT_TYPES[0], app.clock())
        site = Site(daemon.http.url, token, server.home, config_path, folder, _first_slot(app),
                    _served_routes(daemon.http.url), link.token)
        if not stop.is_set():  # stopped while starting: no banner for a demo that is leaving
            print(banner(site), file=out, flush=True)
        while not stop.wait(timeout=0.5):
            if server.process.poll() is not None:
                raise DemoFailed(
                    f"the demo's CalDAV server stopped unexpectedly (see {server.log_path})")
    print("calpool demo stopped; its folder is removed.", file=err, flush=True)
    return 0


def _choose_port(requested: int | None) -> int:
    """``requested`` if free (else one sentence), or the first free port
    from 8740 on."""
    if requested is not None:
        if not _is_free(requested):
            raise DemoFailed(f"port {requested} on {HOST} is in use: choose another with "
                             "--port, or leave --port out to take the next free one")
        return requested
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TO_TRY):
        if _is_free(candidate):
            return candidate
    last = DEFAULT_PORT + PORTS_TO_TRY - 1
    raise DemoFailed(f"no free port on {HOST} from {DEFAULT_PORT} to {last}: choose one "
                     "with --port")


def _is_free(port: int) -> bool:
    # The same socket options as the HTTP hook's listener, so a port whose
    # last connections linger in TIME_WAIT counts as free, as it is to it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise DemoFailed(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    return True


def _bypass_proxies_for_loopback() -> None:
    """Everything the demo talks to is on loopback; a proxy named in the
    environment (which the CalDAV connector would honour) must not get it."""
    for name in ("NO_PROXY", "no_proxy"):
        present = [entry for entry in os.environ.get(name, "").split(",") if entry.strip()]
        os.environ[name] = ",".join([*present, HOST, "localhost"])


def _seed(server: CalDavServer) -> None:
    events = sample.sample_events(datetime.now(sample.ZONE))
    try:
        for calendar in sample.CALENDARS:
            server.make_calendar(calendar.key, calendar.name)
        with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
            stored = [pool.submit(server.put_event, f"{event.calendar}/", event.uid, event.ics)
                      for event in events]
            for done in stored:
                done.result()
    except CalDavServerError as exc:
        raise DemoFailed(f"seeding the sample calendars failed: {exc}") from None


def _first_sync(app: App) -> None:
    """Sync every calendar once, now, so the first slot answer is complete."""
    keys = list(app.config.calendars)
    with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
        reports = list(pool.map(app.sync.sync_calendar, keys))
    failed = [f"{report.calendar} ({report.error})" for report in reports if report.failed]
    if failed:
        raise DemoFailed(f"the first sync of the sample calendars failed: {'; '.join(failed)}")


def _served_routes(url: str) -> frozenset[str] | None:
    """The paths in the hook's own OpenAPI document; None if it cannot be read."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/openapi.json", timeout=5) as response:
            document = json.load(response)
    except (OSError, ValueError):
        log.warning("could not read %s/openapi.json; the banner shows every example", url)
        return None
    return frozenset(document.get("paths", {}))


def _first_slot(app: App) -> datetime | None:
    """A free ``consultation`` start for the booking example, an hour or
    more ahead so it is still free when someone copies the command."""
    now = app.clock()
    ahead = now + timedelta(hours=1)
    answer = app.slots.slots(sample.EVENT_TYPES[0], Interval(ahead, ahead + timedelta(days=7)),
                             now=now)
    return answer.slots[0].start if answer.slots else None
