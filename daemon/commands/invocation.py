"""What a subcommand's implementation receives, and how it reports failure."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from daemon.config import load_config
from daemon.config.settings import Config
from engine.core.model import EventType


class CommandFailed(Exception):
    """A subcommand cannot do its work: ``message`` is the one sentence to
    show, ``exit_code`` 1 for a runtime failure, 2 for bad usage."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class Invocation:
    """One run of a subcommand: its parsed arguments, the config file to use
    (loaded on first ``config()``, so commands that need none never read
    it), and the streams to write to."""

    args: argparse.Namespace
    config_path: Path
    out: TextIO
    err: TextIO
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The checked config; raises ``ConfigError`` (exit 2) when it is not valid."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def event_type(self) -> EventType:
        """The configured event type ``args.event_type`` names; raises
        :class:`CommandFailed` (exit 2) listing the known ones otherwise."""
        config = self.config()
        event_type = config.event_types.get(self.args.event_type)
        if event_type is None:
            known = ", ".join(config.event_types) or "none"
            raise CommandFailed(f"unknown event type {self.args.event_type!r} (known: {known})", 2)
        return event_type
