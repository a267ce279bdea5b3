"""The table of subcommands: their words, help, options and implementation.

The parser in ``daemon.cli`` is built from ``COMMANDS`` alone.  To build a
subcommand, write ``daemon/commands/<name>.py`` with a function
``def run(invocation: Invocation) -> int`` and point the entry's ``handler``
at it (``"daemon.commands.sync:run"``); nothing else changes.  An entry
without a handler says that it is not available yet and exits 2.
Handlers are imported only when chosen, so ``calpool --help`` stays quick
and a command's heavy imports cost nothing to the others.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from daemon.cli_values import (
    cli_duration,
    cli_email,
    cli_name,
    cli_notes,
    cli_port,
    cli_time,
    cli_zone,
)

Arguments = Callable[[argparse.ArgumentParser], None]


def _none(parser: argparse.ArgumentParser) -> None:
    """No options beyond ``--config`` and ``--help``."""


@dataclass(frozen=True, slots=True)
class Command:
    words: tuple[str, ...]
    """``("check-config",)``, or a group and its verb: ``("link", "create")``."""
    help: str
    arguments: Arguments = _none
    handler: str | None = None
    """``"module:function"``, or ``None`` while the subcommand is not built."""
    uses_config: bool = True


def _demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=cli_port, default=None,
                        help="port of the HTTP hook (default 8740, or the next free one)")


def _sync(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calendar", metavar="KEY", action="append",
                        help="sync only this calendar (repeatable)")
    parser.add_argument("--full", action="store_true",
                        help="a full resync instead of changes since the last cursor")


def _range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="T", type=cli_time,
                        help="ISO 8601 date or date-time (default: now)")
    parser.add_argument("--end", metavar="T", type=cli_time,
                        help="ISO 8601 date or date-time")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _slots(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_type", metavar="EVENT_TYPE", help="key of an [event_types] entry")
    _range(parser)
    parser.add_argument("--timezone", metavar="Z", type=cli_zone,
                        help="zone to read and show times in (default: the owner's)")
    _json(parser)


def _book(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_type", metavar="EVENT_TYPE", help="key of an [event_types] entry")
    parser.add_argument("start", metavar="START", type=cli_time,
                        help="ISO 8601 start of the slot (without offset: the owner's zone)")
    parser.add_argument("--name", metavar="N", required=True, type=cli_name,
                        help="the attendee's name")
    parser.add_argument("--email", metavar="E", required=True, type=cli_email,
                        help="the attendee's email")
    parser.add_argument("--notes", metavar="S", default="", type=cli_notes,
                        help="notes for the event")


def _bookings(parser: argparse.ArgumentParser) -> None:
    _range(parser)
    parser.add_argument("--calendar", metavar="KEY", help="only bookings of this calendar")
    _json(parser)


def _link_create(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_type", metavar="EVENT_TYPE", help="key of an [event_types] entry")
    parser.add_argument("--expires", metavar="DURATION", type=cli_duration,
                        help="how long the link is valid (default: links.default_expiry)")
    parser.add_argument("--name", metavar="N", type=cli_name,
                        help="prefill the attendee's name")
    parser.add_argument("--email", metavar="E", type=cli_email,
                        help="prefill the attendee's email")


def _token_new(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="NAME",
                        help="the name to put in the printed [[api.tokens]] entry")
    parser.add_argument("--scope", dest="scopes", action="append",
                        choices=("slots", "book", "admin"),
                        help="a scope for the printed entry (repeatable; default slots and book)")


def _pools_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pool", metavar="POOL", help="key of a [pools] entry")
    parser.add_argument("--cycle", metavar="C", default="current",
                        help="current (default), previous, or an ISO date in the cycle wanted")
    _json(parser)


def _forget_calendar(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("calendar", metavar="KEY", help="the calendar's key")


GROUPS = {
    "pools": "resource pools",
    "link": "one-time booking links",
    "token": "API tokens for the HTTP hook",
    "db": "the database schema",
}

COMMANDS: tuple[Command, ...] = (
    Command(("run",), "run the daemon: sync jobs, outbox, HTTP hook",
            handler="daemon.commands.run:run"),
    Command(("check-config",), "validate the config file and exit (0 valid, 2 invalid)",
            handler="daemon.commands.check_config:run"),
    Command(("demo",), "run a self-contained demo on loopback (ignores --config)", _demo,
            handler="daemon.commands.demo:run", uses_config=False),
    Command(("sync",), "one sync pass, then exit", _sync, handler="daemon.commands.sync:run"),
    Command(("slots",), "list the bookable slots of an event type", _slots,
            handler="daemon.commands.slots:run"),
    Command(("book",), "book a slot and write the events", _book,
            handler="daemon.commands.book:run"),
    Command(("bookings",), "list bookings", _bookings, handler="daemon.commands.bookings:run"),
    Command(("status",), "per calendar: last sync, staleness, push channel, last error", _json,
            handler="daemon.commands.status:run"),
    Command(("link", "create"), "print a one-time booking link", _link_create,
            handler="daemon.commands.link:create"),
    Command(("pools", "report"), "per room of a pool: bookings received and removed in a "
            "reporting cycle, swaps, busy share", _pools_report,
            handler="daemon.commands.pools:report"),
    Command(("token", "new"), "print a new random API token and its sha256", _token_new,
            handler="daemon.commands.token:new", uses_config=False),
    Command(("db", "upgrade"), "apply the schema migrations",
            handler="daemon.commands.db:upgrade"),
    Command(("db", "forget-calendar"), "drop a calendar no config names from the database "
            "(its cached events, cursor, lease, channels; bookings stay)", _forget_calendar,
            handler="daemon.commands.db:forget_calendar"),
)
