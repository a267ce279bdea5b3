"""``calpool run``: the daemon, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from daemon.commands.app import open_app
from daemon.commands.invocation import Invocation
from daemon.logs import configure
from daemon.scheduler import build_scheduler

log = logging.getLogger("calpool.daemon")


def run(invocation: Invocation) -> int:
    config = invocation.config()
    configure(config.daemon.log_format, config.daemon.log_level, invocation.err)
    app = open_app(invocation)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the work in hand", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    scheduler = build_scheduler(app)
    try:
        scheduler.start()
        log.info(
            "calpool is running: %d calendars, %d event types",
            len(config.calendars),
            len(config.event_types),
        )
        while not stop.wait(timeout=1.0):
            pass
    finally:
        # wait=True: a sync batch in flight commits (or rolls back) before exit.
        scheduler.shutdown(wait=True)
        app.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("calpool stopped")
    return 0
