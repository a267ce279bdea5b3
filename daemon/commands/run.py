"""``calpool run``: the daemon, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

from daemon.commands.app import open_app
from daemon.commands.invocation import Invocation
from daemon.logs import configure
from daemon.process import Daemon, stop_on_signals

log = logging.getLogger("calpool.daemon")


def run(invocation: Invocation) -> int:
    config = invocation.config()
    configure(config.daemon.log_format, config.daemon.log_level, invocation.err)
    app = open_app(invocation)
    daemon = Daemon(app)
    try:
        with stop_on_signals(daemon.request_stop):
            daemon.start()
            daemon.wait()
    finally:
        daemon.stop()
        app.close()
    log.info("calpool stopped")
    return 0
