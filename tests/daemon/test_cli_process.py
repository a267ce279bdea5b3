"""The installed console script, run as a user runs it: exit codes, output,
and never a traceback."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from daemon.config import load_config

CALPOOL = Path(sys.executable).parent / "calpool"


def calpool(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("CALPOOL_CONFIG", "CALPOOL_TRACEBACK")}
    environment.update(env or {})
    result = subprocess.run([str(CALPOOL), *argv], capture_output=True, text=True, timeout=60,
                            env=environment, check=False)
    assert "Traceback" not in result.stderr + result.stdout
    return result


def test_console_script_is_installed() -> None:
    assert CALPOOL.exists(), f"{CALPOOL} is missing: install calpool into this environment"


def test_version() -> None:
    result = calpool("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"calpool \d+\.\d+\.\d+\S*\n", result.stdout)


def test_check_config_valid_from_every_source(write_config, base: str, tmp_path: Path) -> None:
    path = write_config(base)
    for argv, env in [(("--config", str(path), "check-config"), None),
                      (("check-config", "--config", str(path)), None),
                      (("check-config",), {"CALPOOL_CONFIG": str(path)}),
                      (("check-config", "--config", str(path)),
                       {"CALPOOL_CONFIG": str(tmp_path / "other.toml")})]:
        result = calpool(*argv, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{path}: valid (")


def test_check_config_invalid_lists_every_problem(write_config, base: str) -> None:
    text = base.replace('owner = "alice"', 'owner = "room-a"') + '[sync]\nwindow_past = "1 day"\n'
    path = write_config(text)
    result = calpool("check-config", "--config", str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "sync.window_past: '1 day' is not a duration like "
        '"90s", "15m", "2h", "7d" or "1h30m"',
        "event_types.consult.owner: 'room-a' is a room; the owner and the people in 'with' are "
        "persons (rooms come from pools)",
    ]


def test_check_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    result = calpool("check-config", "--config", str(path))
    assert (result.returncode, result.stderr) == (2, f"{path}: no such config file\n")


def test_check_config_default_path() -> None:
    if Path("/etc/calpool/calpool.toml").exists():
        pytest.skip("this machine has a real /etc/calpool/calpool.toml")
    result = calpool("check-config")
    assert (result.returncode, result.stderr) == (
        2, "/etc/calpool/calpool.toml: no such config file\n")


def test_check_config_not_toml(write_config) -> None:
    path = write_config("[daemon\n")
    result = calpool("check-config", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr == (
        f"{path}: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 8)\n")


def test_a_command_without_its_config_file_exits_2() -> None:
    result = calpool("link", "create", "consult")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "/etc/calpool/calpool.toml: no such config file\n"


def test_bad_usage_exits_2() -> None:
    result = calpool("slots")
    assert result.returncode == 2
    assert "the following arguments are required: EVENT_TYPE" in result.stderr


def test_token_new_prints_a_pasteable_entry(write_config, base: str) -> None:
    result = calpool("token", "new", "--name", "website", "--scope", "slots")
    assert result.returncode == 0
    token = re.search(r"^token:  (\S+)$", result.stdout, re.MULTILINE)
    digest = re.search(r"^sha256: ([0-9a-f]{64})$", result.stdout, re.MULTILINE)
    assert token and digest
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token[1])  # URL-safe base64 of ≥ 32 bytes
    assert hashlib.sha256(token[1].encode()).hexdigest() == digest[1]
    snippet = result.stdout[result.stdout.index("[[api.tokens]]"):]
    assert tomllib.loads(snippet) == {
        "api": {"tokens": [{"name": "website", "sha256": digest[1], "scopes": ["slots"]}]}}
    config = load_config(write_config(base + "\n" + snippet))
    assert config.api_tokens[0].sha256 == digest[1]
    assert calpool("token", "new").stdout != result.stdout


def test_db_upgrade_migrates_the_configured_sqlite_database(write_config, base: str) -> None:
    path = write_config(base.replace('timezone = "Europe/Berlin"',
                                     'timezone = "Europe/Berlin"\ndatabase = "sqlite:///cal.db"'))
    first = calpool("db", "upgrade", "--config", str(path))
    assert first.returncode == 0, first.stderr
    assert (path.parent / "cal.db").stat().st_size > 0
    assert calpool("db", "upgrade", "--config", str(path)).returncode == 0  # idempotent


def test_db_upgrade_failure_is_one_sentence(write_config, base: str) -> None:
    path = write_config(base.replace(
        'timezone = "Europe/Berlin"',
        'timezone = "Europe/Berlin"\ndatabase = "sqlite:///no/such/folder/cal.db"'))
    result = calpool("db", "upgrade", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"calpool db upgrade: cannot upgrade the database sqlite:///{path.parent}/no/such/folder/"
        "cal.db: ")
    assert result.stderr.count("\n") == 1
