"""Logs: text or one JSON object a line, with context fields; no secret,
credential or attendee address in either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.logs import (
    EMAIL_REDACTED,
    REDACTED,
    Redactor,
    configure,
    key_material,
    secrets_of,
)
from tests.daemon.ops.conftest import API_TOKEN, TOKEN_ENV, app_config


@pytest.fixture
def captured() -> Iterator[Callable[[str, str], io.StringIO]]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def capture(log_format: str, level_name: str = "debug") -> io.StringIO:
        stream = io.StringIO()
        configure(log_format, level_name, stream)
        return stream

    yield capture
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_context_fields(captured: Callable[[str, str], io.StringIO]) -> None:
    stream = captured("json", "info")
    log = logging.getLogger("calpool.test")
    log.info("synced %s", "room-a", extra={"calendar": "room-a", "request_id": "r1"})
    log.debug("not at info")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"booking": "b1"})

    records = [json.loads(line) for line in stream.getvalue().splitlines()]

    assert [record["message"] for record in records] == ["synced room-a", "failed"]
    assert records[0]["calendar"] == "room-a" and records[0]["request_id"] == "r1"
    assert records[1]["booking"] == "b1" and "ValueError: boom" in records[1]["exception"]
    assert {record["level"] for record in records} == {"info", "error"}


def test_text_lines_append_the_context(captured: Callable[[str, str], io.StringIO]) -> None:
    stream = captured("text", "info")
    logging.getLogger("calpool.test").warning("late", extra={"calendar": "alice"})
    assert stream.getvalue().rstrip().endswith("calpool.test: late [calendar=alice]")


@pytest.mark.parametrize("text", [
    "sending request headers={'Authorization': 'Basic Y2FscG9vbDpzZWNyZXQ='}",
    "Authorization: Bearer abcdefghijklmnop",
    "GET https://calpool:secret-pass@dav.example/dav/",
    "ATTENDEE;CN=Jane:mailto:jane@example.org",
    "ATTENDEE;CN=Jane:mailto:jane.cus\r\n tomer@example.org",
    r"b'ATTENDEE;CN=Jane:mailto:jane.cus\r\n tomer@example.org\r\n'",
])
def test_credentials_and_addresses_are_blanked(text: str) -> None:
    redacted = Redactor()(text)
    for secret in ("Y2FscG9vbDpzZWNyZXQ=", "abcdefghijklmnop", "secret-pass", "jane", "tomer"):
        assert secret not in redacted
    assert REDACTED in redacted or EMAIL_REDACTED in redacted


def test_configured_secrets_go_and_calendar_addresses_stay(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, captured: Callable[[str, str], io.StringIO]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, API_TOKEN)
    config = load_config(app_config().write(tmp_path))
    assert API_TOKEN in secrets_of(config)
    redactor = Redactor()
    redactor.update(secrets_of(config), ["alice@example.com"])

    line = redactor(f"token {API_TOKEN} of ALICE@example.com invited bob@example.net")

    assert line == f"token {REDACTED} of ALICE@example.com invited {EMAIL_REDACTED}"


def test_a_service_account_key_is_blanked_line_by_line() -> None:
    line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    key = f"-----BEGIN PRIVATE KEY-----\n{line}\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
    redactor = Redactor()

    redactor.update(key_material(json.dumps({"type": "service_account", "private_key": key})))

    assert redactor(f"a traceback quoting {line}") == f"a traceback quoting {REDACTED}"
