"""The command table and the guard, in process: every subcommand of the
interface is declared with ``--help``, stubs say so and exit 2, and every
kind of failure becomes one sentence and the right exit code."""

from __future__ import annotations

import argparse
import io
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.cli import DEFAULT_CONFIG, build_parser, config_path, dispatch, main
from daemon.cli_values import cli_time
from daemon.commands import COMMANDS, Command

# The subcommands of interface.md's table, with arguments that satisfy their parsers.
INTERFACE = {
    ("run",): [],
    ("check-config",): [],
    ("demo",): ["--port", "8800"],
    ("sync",): ["--calendar", "alice", "--calendar", "room-a", "--full"],
    ("slots",): ["consult", "--start", "2027-03-29", "--end", "2027-04-05T00:00+02:00",
                 "--timezone", "Europe/Berlin", "--json"],
    ("book",): ["consult", "2027-03-29T09:30", "--name", "Ann", "--email", "ann@example.com",
                "--notes", "hi"],
    ("bookings",): ["--start", "2027-03-29", "--calendar", "alice", "--json"],
    ("status",): ["--json"],
    ("link", "create"): ["consult", "--expires", "7d", "--name", "Ann", "--email", "a@b.c"],
    ("token", "new"): [],
    ("db", "upgrade"): [],
    ("db", "forget-calendar"): ["room-b"],
    ("pools", "report"): ["rooms", "--cycle", "previous", "--json"],
}
BUILT = {("check-config",), ("token", "new"), ("db", "upgrade"), ("db", "forget-calendar"),
         ("run",), ("sync",), ("slots",),
         ("demo",), ("book",), ("bookings",), ("status",), ("link", "create"), ("pools", "report")}


def run(argv: list[str], commands: tuple[Command, ...] = COMMANDS) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(argv, out, err, commands)
    return code, out.getvalue(), err.getvalue()


def test_every_interface_subcommand_is_declared() -> None:
    assert {command.words for command in COMMANDS} == set(INTERFACE)


def test_built_subcommands_have_handlers_that_import() -> None:
    built = {command.words for command in COMMANDS if command.handler is not None}
    assert built == BUILT
    for command in COMMANDS:
        if command.handler is not None:
            module, _, function = command.handler.partition(":")
            assert callable(getattr(__import__(module, fromlist=[function]), function))


@pytest.mark.parametrize("words", sorted(INTERFACE), ids=" ".join)
def test_help_everywhere(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    for prefix in range(len(words) + 1):
        code, _, _ = run([*words[:prefix], "--help"])
        assert code == 0
        assert "usage: calpool" in capsys.readouterr().out


def test_unbuilt_subcommand_says_so_and_exits_2() -> None:
    # Every subcommand of the interface is built; an entry without a handler stands in.
    unbuilt = (*COMMANDS, Command(("link", "revoke"), "revoke a link"))
    code, out, err = run(["link", "revoke"], unbuilt)
    assert (code, out) == (2, "")
    assert err == "calpool link revoke: not available yet in this version of calpool\n"


@pytest.mark.parametrize("argv", [
    ["slots", "consult", "--start", "monday"],
    ["slots", "consult", "--timezone", "Mars/Olympus"],
    ["link", "create", "consult", "--expires", "a week"],
    ["demo", "--port", "99999"],
    ["book", "consult", "2027-03-29T09:30"],  # --name and --email are required
    ["frobnicate"],
    ["token"],
    [],
])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(argv)
    assert code == 2
    assert "error:" in capsys.readouterr().err + err


def test_config_option_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["--config", "a.toml", "check-config"]).config == Path("a.toml")
    assert parser.parse_args(["check-config", "--config", "b.toml"]).config == Path("b.toml")
    assert parser.parse_args(["db", "--config", "c.toml", "upgrade"]).config == Path("c.toml")
    assert parser.parse_args(["--config", "d.toml", "db", "upgrade"]).config == Path("d.toml")


def test_config_path_precedence() -> None:
    parser = build_parser()
    given = parser.parse_args(["check-config", "--config", "x.toml"])
    assert config_path(given, {"CALPOOL_CONFIG": "env.toml"}) == Path("x.toml")
    plain = parser.parse_args(["check-config"])
    assert config_path(plain, {"CALPOOL_CONFIG": "env.toml"}) == Path("env.toml")
    assert config_path(plain, {"CALPOOL_CONFIG": ""}) == DEFAULT_CONFIG
    assert config_path(plain, {}) == Path("/etc/calpool/calpool.toml")


def test_check_config_notes_unset_secrets_but_passes(write_config, base: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAV_PASSWORD", raising=False)
    path = write_config(base)
    code, out, err = run(["check-config", "--config", str(path)])
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: valid (1 account, 5 calendars, 2 pools, 1 event type, 0 API tokens)",
        "note: accounts.dav.password_env: environment variable DAV_PASSWORD is not set; "
        "calpool run will need it",
    ]
    monkeypatch.setenv("DAV_PASSWORD", "s3cret")
    assert run(["check-config", "--config", str(path)])[1].count("\n") == 1


def test_cli_time_is_read_in_the_given_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert cli_time("2027-03-29").in_zone("Europe/Berlin") == datetime(2027, 3, 29, tzinfo=berlin)
    assert cli_time("2027-03-29T09:30").in_zone("Europe/Berlin") == datetime(
        2027, 3, 29, 9, 30, tzinfo=berlin)
    assert cli_time("2027-03-29T09:30Z").in_zone("Europe/Berlin") == datetime(
        2027, 3, 29, 9, 30, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        cli_time("29.03.2027")


# --- the guard, with handlers written for the test -------------------------------------

HANDLERS = '''
from daemon.commands.invocation import CommandFailed


def interrupted(invocation):
    raise KeyboardInterrupt


def crashes(invocation):
    raise RuntimeError("disk on fire\\nsecond line")


def fails(invocation):
    raise CommandFailed("the calendar 'alice' failed", exit_code=1)


def loads_config(invocation):
    invocation.config()
    return 0
'''


@pytest.fixture
def doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Command, ...]:
    (tmp_path / "calpool_cli_doubles.py").write_text(textwrap.dedent(HANDLERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tuple(Command((name,), name, handler=f"calpool_cli_doubles:{name}")
                 for name in ("interrupted", "crashes", "fails", "loads_config"))


def test_ctrl_c_exits_130(doubles: tuple[Command, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["interrupted"], doubles) == 130
    assert capsys.readouterr().err == "calpool: interrupted\n"


def test_unexpected_exception_is_one_sentence(doubles: tuple[Command, ...],
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALPOOL_TRACEBACK", raising=False)
    assert main(["crashes"], doubles) == 1
    assert capsys.readouterr().err == (
        "calpool: unexpected error (RuntimeError: disk on fire second line); this is a bug: "
        "set CALPOOL_TRACEBACK=1 to see where\n")


def test_traceback_only_when_asked(doubles: tuple[Command, ...],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALPOOL_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(["crashes"], doubles)


def test_command_failure_is_one_sentence_exit_1(doubles: tuple[Command, ...],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fails"], doubles) == 1
    assert capsys.readouterr().err == "calpool fails: the calendar 'alice' failed\n"


def test_config_errors_of_any_command_exit_2(doubles: tuple[Command, ...], write_config,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config("[daemon]\ntimezone = 3\n[sync]\npush = 1\n")
    assert main(["loads_config", "--config", str(path)], doubles) == 2
    assert capsys.readouterr().err.splitlines() == [
        "daemon.timezone: must be a string", "sync.push: must be true or false"]
