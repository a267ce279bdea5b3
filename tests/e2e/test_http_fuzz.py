"""Schemathesis over ``/openapi.json`` against a running ``calpool demo``
(Radicale, SQLite, the HTTP hook on loopback), every built-in check on and
every phase (examples, coverage, fuzzing, stateful), once with the demo's
token (all scopes) and once without one.

Schemathesis runs as its CLI, ``st run``, exactly as the long run in the
README does, with fewer examples: the run fails on any 5xx, any answer the
document does not describe (status, media type, body schema, headers,
``Allow``) and every other check but ``use_after_free`` (a cancelled
booking stays readable: see ``tests/e2e/schemathesis.toml``, which gives
the reason for each departure from Schemathesis' defaults), and the test
fails with its output.
(Its pytest plugin's ``from_fixture`` does not run under pytest 9.)

The hooks module ``tests/e2e/fuzz_hooks.py`` fills in real values as a user
scripting against the hook would (slot starts the demo offers, its event
types, booking ids and link tokens), so bookings get through; the test
checks that some did.

Bounded for ``make test`` by ``CALPOOL_FUZZ_EXAMPLES`` (examples per
operation, default 8) and ``CALPOOL_FUZZ_SECONDS`` (the time budget of the
fuzzing and stateful phases, default 12; the coverage phase gets 15 s).
``st run``'s budget is one for all its phases, and the coverage phase
alone takes ~40 s here to its end (~1,700 cases), so in one run it spent
the whole budget on a busy machine and left no time to fuzz (CI saw "No
tests were run").  So with the token, examples and coverage run first with
a budget of their own, then fuzzing and stateful with theirs.  Without a
token every route but the public ones answers 401 before it reads the
request, so that run is fuzzing and stateful only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningDemo, environment, start_demo

ST = Path(sys.executable).parent / "st"
ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("CALPOOL_FUZZ_EXAMPLES", "8"))
SECONDS = int(os.environ.get("CALPOOL_FUZZ_SECONDS", "12"))
COVERAGE_SECONDS = 15


@pytest.fixture(scope="module")
def fuzzed_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    workdir = tmp_path_factory.mktemp("fuzz")
    running = start_demo(workdir, "demo")
    yield running
    code = running.stop(signal.SIGTERM)
    stderr = running.stderr()
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-5000:]


def schemathesis_run(demo: RunningDemo, folder: Path, *, token: bool, phases: str,
                     seconds: int) -> tuple[int, str, dict[str, Any]]:
    """``st run`` of ``phases`` over the demo's document; its exit code,
    output and JSON report."""
    report = folder / f"{'with' if token else 'without'}-token-{phases.replace(',', '-')}.json"
    env = {**environment(), "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
           "CALPOOL_FUZZ_URL": demo.url, "CALPOOL_FUZZ_TOKEN": demo.token,
           "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    argv = [str(ST), "--config-file", str(CONFIG), "run", f"{demo.url}/openapi.json",
            "--checks", "all", "--exclude-checks", "use_after_free",
            "--phases", phases, "--max-examples", str(EXAMPLES),
            "--max-time", str(seconds), "--seed", "23", "--workers", "1",
            "--request-timeout", "30", "--suppress-health-check", "all",
            "--report", "json", "--report-json-path", str(report)]
    if token:
        argv += ["--header", f"Authorization: Bearer {demo.token}"]
    # In the test's folder: st keeps its cache (.schemathesis/) where it runs.
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=folder,
                          timeout=seconds * 4 + 60)
    document = json.loads(report.read_text()) if report.exists() else {}
    return done.returncode, done.stdout + done.stderr, document


@pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
def test_schemathesis_finds_nothing(fuzzed_demo: RunningDemo, tmp_path: Path,
                                    token: bool) -> None:
    if token:
        code, output, report = schemathesis_run(fuzzed_demo, tmp_path, token=token,
                                                phases="examples,coverage",
                                                seconds=COVERAGE_SECONDS)
        assert code == 0, output[-12000:]
        assert report["failures"] == [] and report["errors"] == [], output[-12000:]
    code, output, report = schemathesis_run(fuzzed_demo, tmp_path, token=token,
                                            phases="fuzzing,stateful", seconds=SECONDS)
    assert code == 0, output[-12000:]
    assert report["failures"] == [] and report["errors"] == [], output[-12000:]
    assert report["operations"]["tested"] == report["operations"]["total"], output[-12000:]
    assert report["test_cases"]["generated"] >= 100, output[-12000:]


def test_fuzzed_bookings_got_through(fuzzed_demo: RunningDemo) -> None:
    """The real values reached the engine: some fuzzed bookings were made.
    (Runs after the fuzz runs of this module: pytest keeps file order.)"""
    with fuzzed_demo.client() as client:
        answer = client.get("/v1/bookings")
    assert answer.status_code == 200, answer.text
    assert answer.json()["bookings"], "no fuzzed booking got through"
