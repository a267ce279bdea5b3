"""sd_notify without a library: paths, the abstract namespace, the watchdog."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.notify import Notifier


def receive(sock: socket.socket) -> dict[str, str]:
    sock.settimeout(5)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_and_status_reach_a_socket_named_by_path(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})

        assert notifier.ready("serving http://127.0.0.1:8740;\n3 calendars")

        assert receive(sock) == {
            "READY": "1", "STATUS": "serving http://127.0.0.1:8740; 3 calendars"}


def test_an_at_sign_names_the_abstract_namespace() -> None:
    name = f"calpool-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}"})

        assert notifier.stopping()

        assert receive(sock)["STOPPING"] == "1"


def test_reloading_carries_the_monotonic_clock(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")}).reloading()

        message = receive(sock)

    assert message["RELOADING"] == "1" and int(message["MONOTONIC_USEC"]) > 0


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("x") and not notifier.watchdog()


def test_a_socket_that_went_away_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not notifier.status("still here")
    assert "cannot notify systemd" in caplog.text


@pytest.mark.parametrize(("environ", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, timedelta(seconds=30)),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, timedelta(seconds=30)),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(environ: dict[str, str], expected: timedelta | None) -> None:
    assert Notifier(environ).watchdog_interval == expected
