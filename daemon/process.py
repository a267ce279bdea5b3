"""The running daemon: scheduler jobs and the HTTP hook over one App.

``calpool run`` and ``calpool demo`` both use :class:`Daemon`; the difference
between them is only how the config comes to be.

The main thread sits in :meth:`Daemon.wait`; signal handlers only set a
flag, and the main thread does the work: SIGTERM / SIGINT stop (requests in
flight and the sync batch in hand finish first), SIGHUP reloads the config
(:mod:`daemon.reload`).  The same loop pings systemd's watchdog, so a
stuck main thread, a dead HTTP thread or a stopped scheduler make systemd
restart the service.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI

from daemon.cycles import PollCycles
from daemon.http.app import create_app
from daemon.http.server import HttpServer
from daemon.notify import Notifier
from daemon.reload import ConfigLoader, Reloader
from daemon.scheduler import (
    SyncRequestedJob,
    build_scheduler,
    forget_removed_calendars,
    leave,
    stop_channels,
    stop_removed_channels,
)
from daemon.wiring import App
from engine.store import ChangeFeed

log = logging.getLogger("calpool.daemon")

# How often the one-line status shown by `systemctl status` is refreshed.
STATUS_EVERY = 30.0


class Daemon:
    """Starts the periodic jobs and the hook over ``app``; :meth:`stop` lets
    the work in hand (a sync batch, requests) finish before it returns."""

    def __init__(
        self,
        app: App,
        *,
        http: bool = True,
        notifier: Notifier | None = None,
        load_config: ConfigLoader | None = None,
        progress: TextIO | None = None,
    ) -> None:
        self.app = app
        # Where the first pass shows its progress bar when it is a terminal.
        self._progress = progress
        self._cycles: PollCycles | None = None
        self.notifier = notifier or Notifier({})
        self._scheduler: BackgroundScheduler | None = None
        self._requested: SyncRequestedJob | None = None
        self._feed: ChangeFeed | None = None
        self.asgi: FastAPI | None = None
        self.http: HttpServer | None = None
        if http:
            settings = app.config.http
            self.asgi = create_app(app)
            self.http = HttpServer(
                self.asgi,
                host=settings.host,
                port=settings.port,
                tls_cert_file=settings.tls_cert_file,
                tls_key_file=settings.tls_key_file,
                client_timeout=settings.client_timeout.total_seconds(),
                max_connections=settings.max_connections,
            )
        self._reloader = Reloader(load_config) if load_config is not None else None
        self.stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._wake = threading.Event()

    def start(self) -> None:
        forget_removed_calendars(self.app)  # also proves that the database answers
        # PostgreSQL: another process's booking or sync reaches the busy
        # cache within milliseconds (self.app: after a reload, the new one's).
        self._feed = self.app.store.change_feed(lambda: self.app.cache.refresh(self.app.store))
        if self._feed is not None:
            self._feed.start()
        # What start-up built lives as long as the process: keep it out of the
        # collector's full passes, which otherwise pause slot answers for ~75 ms
        # once the slot answer cache holds a few thousand objects.
        gc.collect()
        gc.freeze()
        if self.http is not None:
            self.http.start()
            log.info("HTTP hook listening on %s", self.http.url)
        self._start_scheduler()
        log.info(
            "calpool is running: %d calendars, %d event types",
            len(self.app.config.calendars),
            len(self.app.config.event_types),
        )
        self.notifier.ready(self.summary())

    def _start_scheduler(self) -> None:
        first = self._cycles is None
        self._cycles = PollCycles(self.app.config.calendars, stream=self._progress, first=first)
        self._cycles.start()
        self._requested = SyncRequestedJob(self.app)
        self._scheduler = build_scheduler(self.app, cycles=self._cycles,
                                          requested=self._requested)
        self._scheduler.start()
        self.app.after_marks[:] = [self._requested.wake]  # a push received here syncs at once

    def _stop_scheduler(self) -> None:
        self.app.after_marks.clear()
        if self._scheduler is not None:
            # wait=True: a sync batch in flight commits (or rolls back) first.
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._requested is not None:
            self._requested.close()
            self._requested = None
        if self._cycles is not None:
            self._cycles.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.notifier.stopping()
        if self.http is not None:
            self.http.stop()
        self._stop_scheduler()
        if self._feed is not None:
            self._feed.stop()
        stop_channels(self.app)
        leave(self.app)

    def wait(self) -> None:
        """Serve until :meth:`request_stop` (or a stop signal); reload on
        :meth:`request_reload`; keep systemd's watchdog and status fed."""
        ping_every = None
        if self.notifier.watchdog_interval is not None:
            # Half the interval, as sd_watchdog_enabled(3) advises.
            ping_every = self.notifier.watchdog_interval.total_seconds() / 2
        tick = min(1.0, ping_every) if ping_every else 1.0
        last_ping = last_status = time.monotonic()
        while not self.stopping.is_set():
            self._wake.wait(timeout=tick)
            self._wake.clear()
            if self.stopping.is_set():
                break
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
            now = time.monotonic()
            if ping_every is not None and now - last_ping >= ping_every and self.healthy():
                self.notifier.watchdog()
                last_ping = now
            if self.notifier.enabled and now - last_status >= STATUS_EVERY:
                self.notifier.status(self.summary())
                last_status = now

    def request_stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested.set()
        self._wake.set()

    def reload(self) -> bool:
        """Load the config anew and swap the services it defines into the
        running process; ``False`` (the old ones keep running, the log says
        why) when the new config is not usable."""
        if self._reloader is None:
            log.warning("reload asked for, but this process has no config file to reload")
            return False
        self.notifier.reloading()
        new_app = self._reloader.prepare(self.app)
        if new_app is None:
            self.notifier.ready(self.summary())
            return False
        # Jobs of the old services finish their batch before the new ones start.
        self._stop_scheduler()
        old, self.app = self.app, new_app
        if self.asgi is not None:
            self._reloader.swap_into(self.asgi, new_app)
        stop_removed_channels(old, new_app)
        forget_removed_calendars(new_app, reload=True)
        self._start_scheduler()
        old.retire()
        self.notifier.ready(self.summary())
        log.info("configuration reloaded: %s", self.summary())
        return True

    def healthy(self) -> bool:
        """What the watchdog vouches for: the hook's thread and the scheduler run."""
        http_alive = self.http is None or self.http.alive
        scheduler = self._scheduler
        return http_alive and scheduler is not None and scheduler.running

    def summary(self) -> str:
        """One line for `systemctl status`: where it listens, how the
        calendars stand, what waits in the outbox."""
        app = self.app
        where = f"serving {self.http.url}" if self.http is not None else "running"
        try:
            status = app.status.read(app.clock())
        except Exception as exc:  # the status line must not take the daemon down
            return f"{where}; database unavailable: {' '.join(str(exc).split())[:120]}"
        return (
            f"{where}; {len(status.calendars)} calendars ({status.count('failed')} failed, "
            f"{status.count('stale')} stale, {status.count('never_synced')} not synced yet), "
            f"{len(app.config.event_types)} event types, outbox {status.outbox_depth}"
        )

@contextmanager
def stop_on_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Call ``on_signal`` on SIGTERM and SIGINT while inside the block."""
    with handle_signals(on_signal, None):
        yield


@contextmanager
def handle_signals(
    on_stop: Callable[[], None], on_reload: Callable[[], None] | None
) -> Iterator[None]:
    """SIGTERM and SIGINT call ``on_stop``; SIGHUP calls ``on_reload`` (when
    given).  The handlers only set flags: the work happens on the main loop."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the work in hand", signal.Signals(signum).name)
        on_stop()

    def reload(_signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP: reloading the configuration")
        if on_reload is not None:
            on_reload()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    if on_reload is not None:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
