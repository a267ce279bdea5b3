"""Zones and instants a client sends are checked in one place
(``daemon.inputs``) for every route and the CLI (issue 23): names that are
no IANA zone and instants near the ends of the calendar get a problem
naming the field, never a 500."""

from __future__ import annotations

import argparse
import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from daemon.cli import dispatch
from daemon.cli_values import cli_time, cli_zone
from daemon.inputs import InputError, parse_instant, zone_name
from engine.core.model import Attendee, Booking, BookingStatus
from engine.core.zones import iana_zones
from tests.daemon.http.conftest import NOW, TOKENS, Site, assert_problem

NOT_ZONES = [
    "Europe", "America", "America/Argentina", "Etc",  # directories of the database
    "localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin",
    "../../../etc/passwd", "/etc/localtime", "Europe/../UTC", "Europe/Berlin\x00", "",
    " UTC", "x" * 300, "Europe/" + "A" * 5000,
]
OUT_OF_RANGE = [
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999",
    "0001-01-01", "9999-12-31", "1899-12-31T23:00:00Z", "9000-01-01T00:00:00Z",
    "8999-12-31T23:30:00-14:00",
]
MALFORMED = ["tomorrow", "2027-13-01", "2027-03-29T25:00", "1" * 5000]


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def _names(document: dict[str, Any]) -> list[str]:
    return [error["name"] for error in document["errors"]]


def test_zone_names_come_from_the_zone_database_list() -> None:
    zones = iana_zones()
    assert {"Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"} <= zones
    assert not {"localtime", "posixrules", "Factory", "Europe"} & zones
    assert not [zone for zone in zones if zone.startswith(("right/", "posix/"))]
    for name in NOT_ZONES:
        with pytest.raises(InputError):
            zone_name(name)


def test_a_refused_long_zone_name_is_quoted_cut_short() -> None:
    with pytest.raises(InputError) as caught:
        zone_name("Europe/" + "A" * 5000)
    assert len(str(caught.value)) < 200 and "5007 characters" in str(caught.value)


@pytest.mark.parametrize("text", OUT_OF_RANGE + MALFORMED)
def test_instants_out_of_range_or_malformed_are_refused_with_a_sentence(text: str) -> None:
    for zone in ("UTC", "Pacific/Kiritimati", "Etc/GMT+12"):
        with pytest.raises(InputError):
            parse_instant(text, zone)


def test_instants_inside_the_range_are_read() -> None:
    assert parse_instant("1900-01-01T00:00:00Z", "UTC").year == 1900
    assert parse_instant("8999-12-31T00:00:00+14:00", "UTC").year == 8999
    assert parse_instant("2027-03-28T02:30", "Europe/Berlin").isoformat() == (
        "2027-03-28T01:00:00+00:00")  # in the gap: the transition, as the engine reads it


@pytest.mark.parametrize("zone", NOT_ZONES)
def test_slot_routes_refuse_every_name_that_is_no_zone(site: Site, zone: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = site.get("/v1/event-types/consult/slots", params={"timezone": zone})
    document = assert_problem(response, 422, "/problems/validation")
    assert _names(document) == ["timezone"]
    assert len(response.text) < 1000
    ours = [record for record in caplog.records
            if record.name.startswith(("calpool", "daemon", "engine", "uvicorn"))]
    assert all(len(record.getMessage()) < 1000 and not record.exc_info for record in ours)


def _link(site: Site) -> str:
    response = site.client.post("/v1/links", json={"event_type": "consult"},
                                headers=bearer("ops"))
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _booking(site: Site) -> str:
    start = NOW + timedelta(days=1, hours=3)
    booking = Booking(id="b-1", event_type="consult", start=start,
                      end=start + timedelta(minutes=30), owner="alice", with_=(),
                      rooms={"small": "room-a"}, status=BookingStatus.CONFIRMED, booked_at=NOW,
                      attendee=Attendee("Ann", "ann@example.com"), notes="")
    with site.app.store.unit_of_work() as uow:
        uow.bookings.reserve(booking)
        uow.commit()
    return booking.id


@pytest.mark.parametrize("text", OUT_OF_RANGE + MALFORMED[:2])
def test_every_route_that_takes_an_instant_refuses_one_out_of_range(site: Site,
                                                                     text: str) -> None:
    link = _link(site)
    booking = _booking(site)
    body = {"attendee": {"name": "Ann", "email": "ann@example.com"}, "start": text}
    answers = {
        "slots start": site.get("/v1/event-types/consult/slots", params={"start": text}),
        "slots end": site.get("/v1/event-types/consult/slots",
                              params={"start": "2027-03-26", "end": text}),
        "link slots": site.get(f"/v1/links/{link}/slots", token=None,
                               params={"start": text, "timezone": "Pacific/Kiritimati"}),
        "bookings start": site.get("/v1/bookings", token="desk", params={"start": text}),
        "bookings end": site.get("/v1/bookings", token="desk", params={"end": text}),
        "book": site.client.post("/v1/bookings", json={"event_type": "consult", **body},
                                 headers=bearer("desk")),
        "book again with the key": site.client.post(
            "/v1/bookings", json={"event_type": "consult", **body},
            headers={**bearer("desk"), "Idempotency-Key": f"k-{text[:20]}"}),
        "reschedule": site.client.post(f"/v1/bookings/{booking}/reschedule",
                                       json={"start": text}, headers=bearer("desk")),
        "link booking": site.client.post(f"/v1/links/{link}/bookings", json=body),
    }
    for what, response in answers.items():
        document = assert_problem(response, 422, "/problems/validation")
        expected = "end" if what.endswith(" end") else "start"
        assert _names(document) == [expected], what


@pytest.mark.parametrize("text", OUT_OF_RANGE[:4] + MALFORMED[:1])
def test_the_cli_refuses_the_same_instants_as_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli_time(text)


def test_a_local_time_its_zone_puts_out_of_range_is_a_usage_error(
    write_config: Any, base: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the zone shows it is out of range: the command exits 2 with a
    sentence (the guard of ``daemon.cli``), no traceback."""
    late = cli_time("8999-12-31T23:30")
    with pytest.raises(InputError):
        late.in_zone("Etc/GMT+12")
    monkeypatch.setenv("DAV_PASSWORD", "s3cret")
    path = write_config(base.replace('timezone = "Europe/Berlin"', 'timezone = "Etc/GMT+12"'))
    err = io.StringIO()
    code = dispatch(["bookings", "--start", "8999-12-31T23:30", "--config", str(path)],
                    io.StringIO(), err)
    assert (code, err.getvalue().count("\n")) == (2, 1)
    assert "must lie between the years 1900 and 8999" in err.getvalue()


@pytest.mark.parametrize("zone", ["Europe", "localtime", "right/UTC", "x" * 5000])
def test_the_cli_refuses_the_same_zones(zone: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        cli_zone(zone)
    assert len(str(caught.value)) < 200


# ---- what reaches the provider ----------------------------------------------------------------

BAD_EMAILS = [
    "ada@example.com;X-EVIL=1:mailto:evil@x", 'a"@b.c', '"a b"@example.com', "a b@example.com",
    "ann@example.com\r\nATTENDEE:mailto:evil@x", "ann@example.com\x00", "ann@[127.0.0.1]",
    "ann@localhost", "ann@example.invalid", "ann@exa mple.com", "ann@@example.com",
    "ann@example..com", "<ann@example.com>", "ann@example.com,bob@example.com", "ann",
]
CONTROL = ["\x00", "\x1b[31m", "\x0b", "\x7f", "\x85", "\u2028", "\u202e", "\ud800", "\x08"]


def _attempts(site: Site, attendee: dict[str, str], notes: str = "") -> dict[str, Any]:
    link = _link(site)
    body = {"start": "2027-03-26T10:00", "attendee": attendee, "notes": notes}

    def post(path: str, document: dict[str, Any], token: str | None = None) -> Any:
        # json.dumps escapes what is not ASCII, so a lone surrogate travels as \ud800.
        headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
        return site.client.post(path, content=json.dumps(document), headers=headers)

    return {
        "book": post("/v1/bookings", {"event_type": "consult", **body}, "desk"),
        "link create": post("/v1/links", {"event_type": "consult", "attendee": attendee}, "ops"),
        "link booking": post(f"/v1/links/{link}/bookings", body),
    }


def _nothing_written(site: Site) -> None:
    with site.app.store.reader() as uow:
        assert uow.bookings.count_by_status() == {}
        assert uow.outbox.pending_count() == 0


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_an_address_email_validator_refuses_is_a_422_before_anything_is_written(
    site: Site, email: str,
) -> None:
    for what, response in _attempts(site, {"name": "Ann", "email": email}).items():
        document = assert_problem(response, 422, "/problems/validation")
        assert "attendee.email" in _names(document), what
    _nothing_written(site)


@pytest.mark.parametrize("char", CONTROL)
def test_control_characters_in_names_and_notes_are_refused(site: Site, char: str) -> None:
    for what, response in _attempts(site, {"name": f"Ann{char}Example",
                                           "email": "ann@example.com"}).items():
        document = assert_problem(response, 422, "/problems/validation")
        # pydantic's own JSON reader (POST /v1/bookings) refuses a lone
        # surrogate as invalid JSON already.
        assert {"attendee.name", "body"} & set(_names(document)), what
    answers = _attempts(site, {"name": "Ann", "email": "ann@example.com"}, f"see{char}you")
    for what in ("book", "link booking"):
        document = assert_problem(answers[what], 422, "/problems/validation")
        assert _names(document) in (["notes"], ["body"]), what
    _nothing_written(site)


def test_notes_keep_tabs_and_line_breaks_and_addresses_are_normalized() -> None:
    from daemon.inputs import check_email, check_name, check_notes

    assert check_notes("line one\r\nline two\tend") == "line one\r\nline two\tend"
    assert check_name("Zoë Ångström-名前 👩‍👩‍👧") == "Zoë Ångström-名前 👩‍👩‍👧"
    assert check_email(" Ann@Example.COM ") == "Ann@example.com"
    with pytest.raises(InputError):
        check_name("two\nlines")


@pytest.mark.parametrize(("option", "value"), [
    ("--email", "ada@example.com;X-EVIL=1:mailto:evil@x"), ("--email", 'a"@b.c'),
    ("--name", "Ann\x1b[2J"), ("--name", "Ann\x00"), ("--notes", "hi\x0bthere"),
])
def test_the_cli_refuses_the_same_names_notes_and_addresses(
    option: str, value: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """A usage error (exit 2, argparse's sentence naming the option) before
    the config is even read."""
    options = {"--name": "Ann", "--email": "a@b.c", "--notes": "hi", option: value}
    argv = ["book", "consult", "2027-03-29T09:30", "--config", "/nonexistent.toml"]
    for name, given in options.items():
        argv += [name, given]
    assert dispatch(argv, io.StringIO(), io.StringIO()) == 2
    assert f"argument {option}" in capsys.readouterr().err
    if option != "--notes":
        link = ["link", "create", "consult", option, value, "--config", "/nonexistent.toml"]
        assert dispatch(link, io.StringIO(), io.StringIO()) == 2
        assert f"argument {option}" in capsys.readouterr().err
