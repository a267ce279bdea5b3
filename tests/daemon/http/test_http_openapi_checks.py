"""The OpenAPI document states the query checks the server makes, so that
a schema-valid request is not refused with 422 for its shape (what
Schemathesis' positive_data_acceptance found: an empty ``timezone`` or
``calendar``, a ``cycle`` of digits)."""

from __future__ import annotations

import re
from typing import Any

from engine.core.zones import iana_zones
from tests.daemon.http.conftest import Site, assert_problem


def query_schema(site: Site, path: str, name: str) -> dict[str, Any]:
    document = site.get("/openapi.json", token=None).json()
    [parameter] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    [string] = [s for s in parameter["schema"].get("anyOf", [parameter["schema"]])
                if s.get("type") == "string"]
    return string


def test_timezone_is_an_enum_of_the_zones_the_server_accepts(site: Site) -> None:
    for path in ("/v1/event-types/{key}/slots", "/v1/links/{token}/slots"):
        zones = query_schema(site, path, "timezone")["enum"]
        assert set(zones) == iana_zones()
        assert "Europe/Berlin" in zones
    for outside in ("", "Europe", "localtime", "right/UTC"):
        response = site.get("/v1/event-types/consult/slots", params={"timezone": outside})
        assert_problem(response, 422, "/problems/validation")


def test_calendar_is_an_enum_of_the_configured_calendars(site: Site) -> None:
    calendars = query_schema(site, "/v1/bookings", "calendar")["enum"]
    assert calendars == sorted(site.app.config.calendars)
    response = site.get("/v1/bookings", token="desk", params={"calendar": ""})
    assert_problem(response, 422, "/problems/validation")


def test_cycle_has_the_pattern_the_server_reads(site: Site) -> None:
    pattern = re.compile(query_schema(site, "/v1/pools/{key}/report", "cycle")["pattern"])
    for accepted in ("current", "previous", "2027-03-29"):
        assert pattern.search(accepted)
        assert site.get("/v1/pools/small/report", token="ops",
                        params={"cycle": accepted}).status_code == 200
    for refused in ("0" * 31, "", "2027-3-29", "Current"):
        assert not pattern.search(refused)
        response = site.get("/v1/pools/small/report", token="ops", params={"cycle": refused})
        assert_problem(response, 422, "/problems/validation")
