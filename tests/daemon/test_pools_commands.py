"""``calpool pools report``: the table, the JSON document, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.core.model import Attendee, Booking
from engine.store import Store
from tests.daemon.ops.conftest import TOKEN_ENV, app_config
from tests.support.sites import plain_environment, run_calpool


@pytest.fixture
def config(tmp_path: Path) -> Path:
    settings = app_config().migrated(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    with Store.open(settings.daemon.database_url) as store, store.unit_of_work() as uow:
        for n, room in enumerate(["room-a", "room-a", "room-b"]):
            start = now + timedelta(days=1, hours=n)
            uow.bookings.reserve(Booking(
                id=f"b{n}", event_type="consult", start=start, end=start + timedelta(minutes=30),
                owner="alice", rooms={"rooms": room}, booked_at=now,
                attendee=Attendee("Ann", "ann@example.com")))
        uow.commit()
    return settings.path


def environment() -> dict[str, str]:
    return {**plain_environment(), TOKEN_ENV: "x" * 32}


def test_the_json_report_counts_this_cycle(config: Path) -> None:
    result = run_calpool(config, "pools", "report", "rooms", "--json", env=environment(),
                         timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(m["room"], m["received"]) for m in document["members"]] == [
        ("room-a", 2), ("room-b", 1)]
    assert document["total"] == {"received": 3, "removed": 0}


def test_the_table_has_a_row_per_room_and_a_total(config: Path) -> None:
    result = run_calpool(config, "pools", "report", "rooms", "--cycle", "previous",
                         env=environment(), timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pool rooms (")
    assert lines[1].split()[:3] == ["room", "received", "removed"]
    assert [line.split()[0] for line in lines[2:]] == ["room-a", "room-b", "total"]
    assert lines[-1].split()[1:3] == ["0", "0"]


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "unknown pool 'nope' (known: rooms)"),
    (["rooms", "--cycle", "yesterday"], "--cycle: 'yesterday' is not current, previous or"),
])
def test_bad_input_is_one_sentence_and_exit_2(config: Path, argv: list[str], message: str
                                              ) -> None:
    result = run_calpool(config, "pools", "report", *argv, env=environment(), timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
