"""The ``calpool`` command: the parser, the choice of config file, and the
guard that turns every failure into one sentence and an exit code.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config,
130 interrupted (Ctrl-C).  No traceback reaches the user; set
``CALPOOL_TRACEBACK=1`` to see one for an unexpected error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO, cast

from daemon.commands import COMMANDS, GROUPS, Command
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.config import ConfigError
from daemon.inputs import InputError

DEFAULT_CONFIG = Path("/etc/calpool/calpool.toml")
CONFIG_VARIABLE = "CALPOOL_CONFIG"

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Handler = Callable[[Invocation], int]


def calpool_version() -> str:
    try:
        return version("calpool")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _add_config_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # The subparsers leave the value unset unless given, so `--config` works
    # before the subcommand (the top parser's value survives) or after it.
    parser.add_argument(
        "--config", metavar="PATH", type=Path,
        default=None if top else argparse.SUPPRESS,
        help=f"config file (default: ${CONFIG_VARIABLE}, else {DEFAULT_CONFIG})",
    )


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calpool",
        description="Pooled-availability booking over Google Calendar, Microsoft 365 and CalDAV.",
    )
    parser.add_argument("--version", action="version", version=f"calpool {calpool_version()}")
    _add_config_option(parser, top=True)
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for command in commands:
        actions = top
        if len(command.words) == 2:
            group = command.words[0]
            if group not in groups:
                group_parser = top.add_parser(group, help=GROUPS.get(group, group),
                                              description=GROUPS.get(group, group))
                _add_config_option(group_parser, top=False)
                group_parser.set_defaults(group_parser=group_parser)
                groups[group] = group_parser.add_subparsers(title="commands", metavar="COMMAND")
            actions = groups[group]
        leaf = actions.add_parser(command.words[-1], help=command.help,
                                  description=command.help[:1].upper() + command.help[1:] + ".")
        _add_config_option(leaf, top=False)
        command.arguments(leaf)
        leaf.set_defaults(command=command)
    parser.set_defaults(command=None, group_parser=parser)
    return parser


def config_path(args: argparse.Namespace, environ: dict[str, str] | os._Environ[str]) -> Path:
    """``--config``, else ``$CALPOOL_CONFIG``, else the system-wide file."""
    if args.config is not None:
        return cast(Path, args.config)
    from_environment = environ.get(CONFIG_VARIABLE, "")
    return Path(from_environment) if from_environment else DEFAULT_CONFIG


def _handler(command: Command) -> Handler | None:
    if command.handler is None:
        return None
    module_name, _, function = command.handler.partition(":")
    return cast(Handler, getattr(importlib.import_module(module_name), function))


def dispatch(argv: Sequence[str], out: TextIO, err: TextIO,
             commands: Sequence[Command] = COMMANDS) -> int:
    parser = build_parser(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Command | None = args.command
    if command is None:
        args.group_parser.print_usage(err)
        print(f"{args.group_parser.prog}: error: a command is required", file=err)
        return EXIT_USAGE
    name = " ".join(command.words)
    handler = _handler(command)
    if handler is None:
        print(f"calpool {name}: not available yet in this version of calpool", file=err)
        return EXIT_USAGE
    invocation = Invocation(args=args, config_path=config_path(args, os.environ), out=out,
                            err=err)
    try:
        return handler(invocation)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"calpool {name}: {exc.message}", file=err)
        return exc.exit_code
    except InputError as exc:  # a time that its zone puts out of range (daemon.inputs)
        print(f"calpool {name}: {exc}", file=err)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None, commands: Sequence[Command] = COMMANDS) -> int:
    """The console script.  Returns the exit code; never lets an exception out."""
    try:
        return dispatch(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr,
                        commands)
    except KeyboardInterrupt:
        print("calpool: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`calpool … | head`): nothing left to tell it.
        # Point stdout at /dev/null so the interpreter's final flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get("CALPOOL_TRACEBACK") == "1":
            raise
        detail = " ".join(str(exc).split()) or "no details"
        print(f"calpool: unexpected error ({type(exc).__name__}: {detail}); "
              "this is a bug: set CALPOOL_TRACEBACK=1 to see where", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
