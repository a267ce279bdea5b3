"""The demo's banner: the lines people copy and the line programs parse."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from daemon.demo.banner import Site, banner

TOKEN = "tok-123_ABC"
SITE = Site(
    url="http://127.0.0.1:8741",
    token=TOKEN,
    caldav_url="http://127.0.0.1:40000/calpool/",
    config_path=Path("/tmp/calpool-demo-x/calpool.toml"),
    folder=Path("/tmp/calpool-demo-x"),
    first_slot=datetime(2027, 3, 30, 8, 30, tzinfo=UTC),
    routes=frozenset({"/healthz", "/v1/event-types", "/v1/event-types/{key}/slots"}),
    link_token="link-tok_456",
)


def test_the_last_line_is_the_machine_readable_one() -> None:
    lines = banner(SITE).splitlines()

    assert lines[-1] == f"CALPOOL_DEMO url=http://127.0.0.1:8741 token={TOKEN}"
    assert sum(line.startswith("CALPOOL_DEMO") for line in lines) == 1


def test_the_human_lines_name_the_caldav_server_and_the_config() -> None:
    text = banner(SITE)

    assert "  CalDAV server: http://127.0.0.1:40000/calpool/  " in text
    assert "  Config:        /tmp/calpool-demo-x/calpool.toml\n" in text
    assert f"export TOKEN={TOKEN}" in text


def test_examples_only_for_the_routes_the_hook_serves() -> None:
    today = banner(SITE)
    later = banner(replace(SITE, routes=frozenset({*(SITE.routes or ()), "/v1/bookings"})))

    assert "/v1/event-types/consultation/slots'" in today
    assert "/v1/bookings" not in today
    booking_line = next(line for line in later.splitlines() if line.strip().startswith("-d "))
    body = json.loads(shlex.split(booking_line.removesuffix("\\"))[1])
    assert body["event_type"] == "consultation"
    assert body["start"] == "2027-03-30T10:30:00+02:00"  # the first slot, in Berlin time


def test_unknown_routes_show_every_example() -> None:
    text = banner(replace(SITE, routes=None))

    assert "/v1/event-types" in text and "/v1/bookings" in text


def test_the_banner_names_the_public_page_and_a_one_time_link() -> None:
    text = banner(SITE)

    assert "  Customer page: http://127.0.0.1:8741/meet/consultation\n" in text
    assert "  One-time link: http://127.0.0.1:8741/book/link-tok_456\n" in text
