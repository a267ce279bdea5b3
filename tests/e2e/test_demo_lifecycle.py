"""``calpool demo`` from start to stop: quick to answer, clean to stop, and
one sentence when the chosen port is taken."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment, start_demo

# The spec: under ten seconds from start to the first answered slot query.
FIRST_ANSWER_WITHIN = 10.0
DEFAULT_PORT = 8740


def listening_socket(port: int) -> socket.socket | None:
    """A listener on 127.0.0.1:``port``, or None when something else
    already listens there (the port is busy either way)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Else a port left in TIME_WAIT by an earlier demo would refuse this
    # bind while the demo (which reuses such ports) could take it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.listen(1)
    return sock


@pytest.fixture
def default_port_taken() -> Iterator[None]:
    sock = listening_socket(DEFAULT_PORT)
    yield
    if sock is not None:
        sock.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_answers_slots_within_ten_seconds_and_stops_cleanly(
    tmp_path: Path, default_port_taken: None, signum: int
) -> None:
    demo = start_demo(tmp_path, "demo")
    with demo.client() as client:
        answer = client.get("/v1/event-types/consultation/slots")
    elapsed = time.monotonic() - demo.started_at
    caldav_before = httpx.request("PROPFIND", demo.caldav_url, headers={"Depth": "0"},
                                  trust_env=False, timeout=5)

    code = demo.stop(signum)

    assert answer.status_code == 200, answer.text
    assert answer.json()["slots"], "the sample site offers consultation slots"
    assert elapsed < FIRST_ANSWER_WITHIN, f"first slot answer after {elapsed:.1f}s"
    # 8740 was taken: the demo took the next free port instead.
    assert urlsplit(demo.url).port != DEFAULT_PORT
    assert code == 0, demo.stderr()
    assert caldav_before.status_code < 500
    assert demo.config_path.exists() is False
    assert not demo.folder.exists(), f"{demo.folder} is left behind"
    with pytest.raises(httpx.ConnectError):  # Radicale is gone with it
        httpx.request("PROPFIND", demo.caldav_url, headers={"Depth": "0"}, trust_env=False,
                      timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{demo.url}/healthz", trust_env=False, timeout=5)
    assert "Traceback" not in demo.stderr()


def test_a_busy_port_given_with_port_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CALPOOL), "demo", "--port", str(port)], capture_output=True, text=True,
            env=environment(), cwd=tmp_path, timeout=60, check=False,
        )

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0]
    assert lines[0].startswith("calpool demo: ")


def test_a_port_that_is_not_a_port_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CALPOOL), "demo", "--port", "70000"], capture_output=True, text=True,
        env=environment(), cwd=tmp_path, timeout=60, check=False,
    )

    assert result.returncode == 2
    assert "not a TCP port" in result.stderr
