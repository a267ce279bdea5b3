"""Building the process's object graph for a subcommand (kept apart from
``invocation`` so that commands which need no database never import it)."""

from __future__ import annotations

from typing import Any

from daemon.commands.invocation import CommandFailed, Invocation
from daemon.wiring import App, build
from engine.store import SchemaNotCurrent


def open_app(invocation: Invocation, **options: Any) -> App:
    """Build the object graph from the invocation's config; an unmigrated
    database becomes one sentence (exit 1) naming ``calpool db upgrade``."""
    config = invocation.config()
    try:
        return build(config, **options)
    except SchemaNotCurrent as exc:
        raise CommandFailed(str(exc)) from exc
