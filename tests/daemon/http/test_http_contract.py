"""Answers keep to the documented contract (issue 23): a 405 lists every
method of its path in ``Allow``; a body that is not UTF-8 is a documented
validation problem; the OpenAPI document types what the server checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from daemon.http.openapi import DURATION_PATTERN
from tests.daemon.http.conftest import TOKENS, Site, assert_problem

UNUSED_METHODS = ["PUT", "PATCH", "DELETE", "POST", "GET"]
NOT_UTF8 = [b"\xff\xfe{}", b'{"event_type": "\xff"}', '{"event_type": "caf\xe9"}'.encode("latin-1"),
            b"\xc3\x28", b'{"start": "\xed\xa0\x80"}']  # the last: an encoded surrogate


def _document(site: Site) -> dict[str, Any]:
    document: dict[str, Any] = site.client.get("/openapi.json").json()
    return document


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", path)


def test_a_405_lists_every_method_of_its_path(site: Site) -> None:
    paths = _document(site)["paths"]
    tried = 0
    for path, operations in paths.items():
        documented = {method.upper() for method in operations}
        for method in UNUSED_METHODS:
            if method in documented:
                continue
            response = site.client.request(method, _concrete(path))
            assert_problem(response, 405, "/problems/method-not-allowed")
            allowed = {part.strip() for part in response.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == documented, (path, method)
            tried += 1
    assert tried >= 20
    bookings = site.client.put("/v1/bookings")
    assert set(bookings.headers["allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize("body", NOT_UTF8)
def test_a_body_that_is_not_utf8_is_a_validation_problem(site: Site, body: bytes) -> None:
    made = site.client.post("/v1/links", json={"event_type": "consult"},
                            headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    link = made.json()["token"]
    for path, token in (("/v1/links", "ops"), ("/v1/bookings", "desk"),
                        ("/v1/bookings/some-id/reschedule", "desk"),
                        (f"/v1/links/{link}/bookings", None)):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {TOKENS[token]}"
        response = site.client.post(path, content=body, headers=headers)
        document = assert_problem(response, 422, "/problems/validation")
        assert document["errors"], path


def _schema(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return found
    return node


def _strings(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [each for each in [node, *node.get("anyOf", ())] if each.get("type") == "string"]


def test_the_document_types_what_the_server_checks(site: Site) -> None:
    document = _document(site)
    paths = document["paths"]
    for path, method in (("/v1/event-types/{key}/slots", "get"), ("/v1/bookings", "get"),
                         ("/v1/links/{token}/slots", "get")):
        parameters = {p["name"]: p for p in paths[path][method]["parameters"]}
        for name in ("start", "end"):
            assert [s["format"] for s in _strings(parameters[name]["schema"])] == ["date-time"]
            assert "1900 to 8999" in parameters[name]["description"]
    bodies = {path: _schema(document, paths[path]["post"]["requestBody"]["content"]
                            ["application/json"]["schema"])
              for path in ("/v1/bookings", "/v1/links", "/v1/links/{token}/bookings",
                           "/v1/bookings/{booking_id}/reschedule")}
    for path in ("/v1/bookings", "/v1/links/{token}/bookings",
                 "/v1/bookings/{booking_id}/reschedule"):
        assert bodies[path]["properties"]["start"]["format"] == "date-time", path
    for path in ("/v1/bookings", "/v1/links"):
        assert bodies[path]["properties"]["event_type"]["enum"] == ["consult", "team"]
    (expires,) = _strings(bodies["/v1/links"]["properties"]["expires_in"])
    assert expires["pattern"] == DURATION_PATTERN
    attendee = _schema(document, bodies["/v1/bookings"]["properties"]["attendee"])
    assert attendee["properties"]["email"]["format"] == "email"


@pytest.mark.parametrize("text", ["7d", "1h30m", "90s", "2d3h4m5s"])
def test_the_duration_pattern_admits_what_the_server_takes(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), text)


@pytest.mark.parametrize("text", ["", "7", "d", "7w", "1m1h", "-1d", "7d7d"])
def test_the_duration_pattern_refuses_what_the_server_refuses(site: Site, text: str) -> None:
    assert not re.fullmatch(DURATION_PATTERN, text)
    response = site.client.post("/v1/links", json={"event_type": "consult", "expires_in": text},
                                headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    assert_problem(response, 422, "/problems/validation")


def test_an_event_type_outside_the_enum_is_refused(site: Site) -> None:
    for path, token in (("/v1/links", "ops"), ("/v1/bookings", "desk")):
        response = site.client.post(path, json={
            "event_type": "nope", "start": "2027-03-26T10:00",
            "attendee": {"name": "Ann", "email": "ann@example.com"}},
            headers={"Authorization": f"Bearer {TOKENS[token]}"})
        assert_problem(response, 422, "/problems/validation")
