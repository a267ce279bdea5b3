"""The running daemon: scheduler jobs (and, once built, the HTTP hook) over one App.

``calpool run`` and ``calpool demo`` both use :class:`Daemon`; the difference
between them is only how the config comes to be.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from daemon.http.app import create_app
from daemon.http.server import HttpServer
from daemon.scheduler import build_scheduler
from daemon.wiring import App

log = logging.getLogger("calpool.daemon")


class Daemon:
    """Starts the periodic jobs over ``app``; :meth:`stop` lets the work in
    hand (a sync batch) finish before it returns."""

    def __init__(self, app: App, *, http: bool = True) -> None:
        self.app = app
        self._scheduler: BackgroundScheduler | None = None
        self.http: HttpServer | None = None
        if http:
            settings = app.config.http
            self.http = HttpServer(
                create_app(app),
                host=settings.host,
                port=settings.port,
                tls_cert_file=settings.tls_cert_file,
                tls_key_file=settings.tls_key_file,
            )
        self.stopping = threading.Event()

    def start(self) -> None:
        if self.http is not None:
            self.http.start()
            log.info("HTTP hook listening on %s", self.http.url)
        self._scheduler = build_scheduler(self.app)
        self._scheduler.start()
        log.info(
            "calpool is running: %d calendars, %d event types",
            len(self.app.config.calendars),
            len(self.app.config.event_types),
        )

    def stop(self) -> None:
        self.stopping.set()
        if self.http is not None:
            self.http.stop()
        if self._scheduler is not None:
            # wait=True: a sync batch in flight commits (or rolls back) first.
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def wait(self) -> None:
        """Block until :meth:`request_stop` (or a stop signal) is called."""
        while not self.stopping.wait(timeout=1.0):
            pass

    def request_stop(self) -> None:
        self.stopping.set()


@contextmanager
def stop_on_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Call ``on_signal`` on SIGTERM and SIGINT while inside the block."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the work in hand", signal.Signals(signum).name)
        on_signal()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
