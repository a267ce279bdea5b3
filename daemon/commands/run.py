"""``calpool run``: the daemon, until SIGTERM or SIGINT; SIGHUP reloads the config."""

from __future__ import annotations

import logging

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.config import load_config
from daemon.config.settings import Config
from daemon.http.server import HttpServerError
from daemon.logs import configure, protect
from daemon.notify import Notifier
from daemon.process import Daemon, handle_signals

log = logging.getLogger("calpool.daemon")


def run(invocation: Invocation) -> int:
    config = invocation.config()
    configure(config.daemon.log_format, config.daemon.log_level, invocation.err)
    protect(config)
    app = open_app(invocation)

    def reread() -> Config:
        return load_config(invocation.config_path)

    try:
        daemon = Daemon(app, notifier=Notifier(), load_config=reread,
                        progress=invocation.err)
    except HttpServerError as exc:
        app.close()
        raise CommandFailed(str(exc)) from None
    try:
        with handle_signals(daemon.request_stop, daemon.request_reload):
            try:
                daemon.start()
            except HttpServerError as exc:
                raise CommandFailed(str(exc)) from None
            daemon.wait()
    finally:
        daemon.stop()
        daemon.app.close()
    log.info("calpool stopped")
    return 0
