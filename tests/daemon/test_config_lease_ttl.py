"""``sync.lease_ttl`` (interface.md, second wave): how long a dead
process's sync lease holds before another process takes its calendars
over; 2 minutes unless set.  The crash harness (tests/e2e) sets it short and
relies on the restarted daemon syncing every calendar again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from tests.support.sites import write_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def example_with(tmp_path: Path, line: str | None) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    kept = [each for each in text.splitlines() if not each.startswith("lease_ttl")]
    if line is not None:
        kept.insert(kept.index("[sync]") + 1, line)
    return write_config(tmp_path, "\n".join(kept) + "\n")


def test_the_lease_ttl_defaults_to_two_minutes(tmp_path: Path) -> None:
    assert load_config(example_with(tmp_path, None)).sync.lease_ttl == timedelta(minutes=2)


def test_the_lease_ttl_is_read(tmp_path: Path) -> None:
    path = example_with(tmp_path, 'lease_ttl = "5s"')
    assert load_config(path).sync.lease_ttl == timedelta(seconds=5)


@pytest.mark.parametrize("value", ['"0s"', '"soon"', "5"])
def test_a_lease_ttl_that_is_no_positive_duration_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(example_with(tmp_path, f"lease_ttl = {value}"))
    assert any(problem.startswith("sync.lease_ttl") for problem in raised.value.problems)
