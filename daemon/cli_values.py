"""Argument types of the command line: times, zones, durations, ports.

Each is an ``argparse`` ``type=`` callable, so a malformed value is a usage
error (exit 2) with one sentence, before any command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from daemon.config.durations import parse_duration
from daemon.inputs import (
    InputError,
    check_email,
    check_name,
    check_notes,
    parse_instant,
    zone_name,
)


@dataclass(frozen=True, slots=True)
class CliTime:
    """A time ``T`` as typed: a date (the start of that day) or a date-time,
    with or without an offset.  It becomes an instant only once the zone to
    read it in is known (``--timezone``, else the command's default)."""

    text: str
    value: date | datetime

    def in_zone(self, zone: str) -> datetime:
        """The aware instant; a value without an offset is read in ``zone``
        as the HTTP hook reads it (``daemon.inputs.parse_instant``).  Raises
        ``InputError`` when the zone puts it out of range."""
        return parse_instant(self.text, zone)


def cli_time(text: str) -> CliTime:
    """Checked as the HTTP hook checks a time (format and year range; a
    local time's zone comes later)."""
    try:
        parse_instant(text, "UTC")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    text = text.strip()
    value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    return CliTime(text, value)


def cli_zone(text: str) -> str:
    try:
        return zone_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cli_duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0s")
    return value


def cli_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    def argument(text: str) -> str:
        try:
            return check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    argument.__name__ = check.__name__.removeprefix("check_")  # argparse names it in errors
    return argument


cli_name = _checked(check_name)
cli_email = _checked(check_email)
cli_notes = _checked(check_notes)
