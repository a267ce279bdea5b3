"""``provider = "microsoft"`` in the config builds the Microsoft connector
(daemon/wiring.py): its calendars sync from the Graph fake and their busy
time reaches the slots, through the settings a site writes (secret from
the environment, ``authority_url``, ``graph_url``, ``ca_file``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.wiring import build
from engine.core.model import Interval
from tests.fakes.graph import GraphFake
from tests.support.config_builder import SiteConfig

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)


def test_a_microsoft_account_syncs_into_the_slots(
    fake: GraphFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person, room = "bob-wired@contoso.example", "havel-wired@contoso.example"
    fake.add_mailbox(person, timezone="Europe/Berlin")
    fake.add_mailbox(room)
    fake.create(room, {"subject": "taken", "showAs": "busy",
                       "start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "UTC"},
                       "end": {"dateTime": "2027-03-01T11:00:00", "timeZone": "UTC"}})
    monkeypatch.setenv("CALPOOL_TEST_M365_SECRET", fake.client_secret)
    config = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .sync(push=False)
        .account("m365", provider="microsoft", tenant_id=fake.tenant_id,
                 client_id=fake.client_id, client_secret_env="CALPOOL_TEST_M365_SECRET",
                 graph_url=fake.graph_url, authority_url=fake.authority_url,
                 ca_file=fake.ca_file)
        .calendars({"bob": person, "havel": room}, persons={"bob"}, account="m365")
        .pool("rooms", members=["havel"])
        .event_type("consult", title="Consult", duration="30m", owner="bob", pools=["rooms"])
    ).migrated(tmp_path)

    app = build(config, clock=lambda: NOW)
    try:
        assert app.unavailable == {}
        for key in ("bob", "havel"):
            assert not app.sync.sync_calendar(key).failed
        answer = app.slots.slots("consult", Interval(NOW, NOW + timedelta(hours=8)), now=NOW)
        starts = {slot.start for slot in answer.slots}
        assert NOW + timedelta(hours=2) in starts
        assert NOW + timedelta(hours=3) not in starts  # the room is busy 10:00-11:00
    finally:
        app.close()
