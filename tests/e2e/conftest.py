"""``calpool demo`` as a user runs it: the console script as a subprocess.

:func:`start_demo` starts it, reads its banner (the human lines for the
CalDAV server and the config, then ``CALPOOL_DEMO url=… token=…``) and
returns a :class:`RunningDemo`; :meth:`RunningDemo.stop` sends a signal and
waits for the exit code.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CALPOOL = Path(sys.executable).parent / "calpool"
MACHINE_LINE = re.compile(r"^CALPOOL_DEMO url=(?P<url>\S+) token=(?P<token>\S+)$")
CALDAV_LINE = re.compile(r"^\s*CalDAV server:\s+(?P<caldav>http://\S+)")
CONFIG_LINE = re.compile(r"^\s*Config:\s+(?P<config>/\S+)")
BANNER_TIMEOUT = 30.0


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    started_at: float
    """``time.monotonic()`` just before the process was started."""
    url: str
    token: str
    caldav_url: str
    config_path: Path
    stdout_lines: list[str]
    stderr_path: Path
    _reader: threading.Thread = field(repr=False)

    @property
    def folder(self) -> Path:
        return self.config_path.parent

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, trust_env=False, timeout=10,
                            headers={"Authorization": f"Bearer {self.token}"})

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("CALPOOL_CONFIG", "CALPOOL_TRACEBACK")}


def start_demo(workdir: Path, *argv: str) -> RunningDemo:
    """Start ``calpool demo`` (extra ``argv`` after the subcommand) and wait
    for its machine-readable line; fails the test with its output if the
    line does not come within ``BANNER_TIMEOUT`` seconds."""
    stderr_path = workdir / "demo.stderr"
    lines: list[str] = []
    arrived: queue.Queue[str | None] = queue.Queue()
    with stderr_path.open("w") as stderr:
        started_at = time.monotonic()
        process = subprocess.Popen(
            [str(CALPOOL), *argv], stdout=subprocess.PIPE, stderr=stderr, text=True,
            env=environment(), cwd=workdir,
        )

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            arrived.put(line.rstrip("\n"))
        arrived.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    found: dict[str, str] = {}
    deadline = time.monotonic() + BANNER_TIMEOUT
    while "token" not in found:
        try:
            line = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            process.kill()
            process.wait()
            pytest.fail("calpool demo printed no CALPOOL_DEMO line:\n" + "\n".join(lines)
                        + "\n" + stderr_path.read_text(errors="replace"))
        for pattern in (MACHINE_LINE, CALDAV_LINE, CONFIG_LINE):
            match = pattern.match(line)
            if match:
                found.update(match.groupdict())
    # The human lines come before the machine-readable one, which is last.
    assert {"caldav", "config"} <= found.keys(), lines
    return RunningDemo(process, started_at, found["url"], found["token"], found["caldav"],
                       Path(found["config"]), lines, stderr_path, reader)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """One demo for the module's read-and-edit tests; ``--config`` names a
    file that does not exist, which the demo must ignore."""
    workdir = tmp_path_factory.mktemp("demo")
    running = start_demo(workdir, "--config", str(workdir / "missing.toml"), "demo")
    yield running
    running.stop(signal.SIGTERM)
