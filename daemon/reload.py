"""Reloading the config into a running daemon (SIGHUP).

A reload reads and checks the file, builds the new services (connectors,
busy cache, sync, slots, bookings) over the running process's store and
metrics, and resolves the new API tokens, all before anything running is
touched.  Any failure on the way is logged with its reasons and leaves the
old services serving.  The daemon then swaps the new ``App`` in
(:meth:`Reloader.swap_into`) and reschedules the jobs.

Some keys cannot change under a running process: the listener, its
limits and the database.  A reload keeps the running values of those, and the log names
each one that changed, to be applied by a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from fastapi import FastAPI

from daemon.config import ConfigError
from daemon.config.settings import Config
from daemon.http.auth import TokenRegistry
from daemon.logs import JsonFormatter, TextFormatter, protect
from daemon.wiring import App, build

log = logging.getLogger("calpool.daemon")

ConfigLoader = Callable[[], Config]
"""Reads and checks the config file; raises ``ConfigError`` when it is not valid."""


def restart_keys(running: Config, new: Config) -> list[str]:
    """The keys that differ between ``running`` and ``new`` but need a restart."""
    changed = []
    if (running.http.host, running.http.port) != (new.http.host, new.http.port):
        changed.append("http.listen")
    if running.http.tls_cert_file != new.http.tls_cert_file:
        changed.append("http.tls_cert_file")
    if running.http.tls_key_file != new.http.tls_key_file:
        changed.append("http.tls_key_file")
    changed += [f"http.{key}" for key in ("max_body", "client_timeout", "max_connections")
                if getattr(running.http, key) != getattr(new.http, key)]
    if running.daemon.database_url != new.daemon.database_url:
        changed.append("daemon.database")
    return changed


def keeping_running_values(running: Config, new: Config) -> Config:
    """``new`` with the restart-only keys as they run, so that the running
    ``App``'s config says what the process really does."""
    http = replace(new.http, host=running.http.host, port=running.http.port,
                   tls_cert_file=running.http.tls_cert_file,
                   tls_key_file=running.http.tls_key_file, max_body=running.http.max_body,
                   client_timeout=running.http.client_timeout,
                   max_connections=running.http.max_connections)
    daemon = replace(new.daemon, database_url=running.daemon.database_url)
    return replace(new, http=http, daemon=daemon)


class Reloader:
    def __init__(self, load: ConfigLoader) -> None:
        self._load = load
        self._tokens: TokenRegistry | None = None

    def prepare(self, running: App) -> App | None:
        """The ``App`` of the new config, or ``None`` (logged) when it cannot
        be used."""
        try:
            loaded = self._load()
        except ConfigError as exc:
            log.error("reload refused, the running configuration stays: %s",
                      "; ".join(exc.problems))
            return None
        later = restart_keys(running.config, loaded)
        if later:
            log.warning("reload: %s changed; a restart applies %s, the running values stay",
                        ", ".join(later), "it" if len(later) == 1 else "them")
        config = keeping_running_values(running.config, loaded)
        protect(config)
        try:
            tokens = TokenRegistry(config.api_tokens)
            new = build(config, store=running.store, metrics=running.metrics,
                        holder=running.leases.holder,
                        clock=running.clock, limits=running.limits)
        except ConfigError as exc:
            log.error("reload refused, the running configuration stays: %s",
                      "; ".join(exc.problems))
            return None
        except Exception:  # the daemon must outlive a reload that went wrong
            log.exception("reload refused, the running configuration stays")
            running.watch_metrics()
            return None
        self._tokens = tokens
        _apply_logging(running.config, config)
        log.info("reload: %s", _changes(running.config, config))
        return new

    def swap_into(self, asgi: FastAPI, app: App) -> None:
        """Serve ``app`` (and the tokens read with it) from the next request on."""
        if self._tokens is not None:
            asgi.state.tokens = self._tokens
        asgi.state.calpool = app


def _apply_logging(running: Config, new: Config) -> None:
    root = logging.getLogger()
    if new.daemon.log_level != running.daemon.log_level:
        root.setLevel(new.daemon.log_level.upper())
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    if new.daemon.log_format != running.daemon.log_format:
        formatter = JsonFormatter() if new.daemon.log_format == "json" else TextFormatter()
        for handler in root.handlers:
            handler.setFormatter(formatter)


def _changes(running: Config, new: Config) -> str:
    parts = []
    for name, before, after in (
        ("calendars", running.calendars, new.calendars),
        ("pools", running.pools, new.pools),
        ("event types", running.event_types, new.event_types),
        ("accounts", running.accounts, new.accounts),
    ):
        added = [key for key in after if key not in before]
        removed = [key for key in before if key not in after]
        changed = [key for key in after if key in before and after[key] != before[key]]
        words = [f"+{key}" for key in added] + [f"-{key}" for key in removed] + [
            f"~{key}" for key in changed]
        parts.append(f"{len(after)} {name}" + (f" ({' '.join(words)})" if words else ""))
    parts.append(f"{len(new.api_tokens)} API tokens")
    return ", ".join(parts)
