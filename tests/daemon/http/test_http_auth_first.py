"""Authentication comes before the body, on every route (issue 23), and the
``Authorization`` header is read strictly: ``Bearer`` in any case, one
space, the token, one header."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from daemon.http.app import ROUTERS
from daemon.http.auth import LINK_AUTHORISED, required_scope
from tests.daemon.http.conftest import TOKENS, Site, assert_problem

MALFORMED_BODIES = [b"{", b"\xff\xfe{}", b"[]", b"not json", b'{"start": 1e999999}', b"",
                    b'{"event_type": ' * 50]
# A token configured with each scope, and one without it.
HOLDER = {"slots": "website", "book": "desk", "admin": "ops"}
LACKING = {"slots": "ops", "book": "website", "admin": "desk"}


def _routes(site: Site) -> list[tuple[str, str, str]]:
    """(method, concrete path, scope) of every route that needs a token."""
    found = []
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute) and (scope := required_scope(route)) is not None:
            path = re.sub(r"\{[^}]+\}", "some-id", route.path_format)
            found.extend((method, path, scope) for method in sorted(route.methods))
    return found


def _send(site: Site, method: str, path: str, body: bytes,
          headers: dict[str, str] | list[tuple[str, str]] | None = None) -> Any:
    return site.client.request(method, path, content=body, headers=headers or {
        "Content-Type": "application/json"})


def test_every_route_with_a_token_is_known(site: Site) -> None:
    routes = _routes(site)
    assert ("POST", "/v1/links", "admin") in routes
    assert ("POST", "/v1/bookings/some-id/reschedule", "book") in routes
    assert ("POST", "/v1/bookings", "book") in routes
    assert len(routes) >= 10


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_a_malformed_body_without_a_token_gets_401_on_every_route(site: Site,
                                                                  body: bytes) -> None:
    for method, path, _ in _routes(site):
        response = _send(site, method, path, body)
        assert_problem(response, 401, "/problems/unauthorized")


@pytest.mark.parametrize("body", MALFORMED_BODIES[:3])
def test_a_malformed_body_with_an_unknown_token_or_without_the_scope_gets_401_or_403(
    site: Site, body: bytes,
) -> None:
    for method, path, scope in _routes(site):
        unknown = _send(site, method, path, body, {"Authorization": "Bearer nope",
                                                   "Content-Type": "application/json"})
        assert_problem(unknown, 401, "/problems/unauthorized")
        lacking = _send(site, method, path, body,
                        {"Authorization": f"Bearer {TOKENS[LACKING[scope]]}",
                         "Content-Type": "application/json"})
        assert_problem(lacking, 403, "/problems/forbidden")


@pytest.mark.parametrize("body", MALFORMED_BODIES[:3])
def test_a_malformed_body_with_the_token_is_then_refused_as_malformed(site: Site,
                                                                      body: bytes) -> None:
    for path, scope in (("/v1/links", "admin"), ("/v1/bookings/some-id/reschedule", "book"),
                        ("/v1/bookings", "book")):
        response = _send(site, "POST", path, body,
                         {"Authorization": f"Bearer {TOKENS[HOLDER[scope]]}",
                          "Content-Type": "application/json"})
        assert_problem(response, 422, "/problems/validation")


@pytest.mark.parametrize("body", MALFORMED_BODIES[:3])
def test_a_link_route_opens_the_link_before_reading_the_body(site: Site, body: bytes) -> None:
    assert {"/v1/links/{token}/bookings"} == LINK_AUTHORISED
    unknown = _send(site, "POST", "/v1/links/no-such-link/bookings", body)
    assert_problem(unknown, 404, "/problems/link-not-found")
    made = site.client.post("/v1/links", json={"event_type": "consult"},
                            headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    token = made.json()["token"]
    site.client.delete(f"/v1/links/{token}", headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    revoked = _send(site, "POST", f"/v1/links/{token}/bookings", body)
    assert_problem(revoked, 410, "/problems/link-expired")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(site: Site, scheme: str) -> None:
    response = site.get("/v1/event-types", token=None,
                        headers={"Authorization": f"{scheme} {TOKENS['website']}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("header", [
    "Bearer  {t}", "Bearer {t} ", "Bearer\t{t}", "Bearer {t}\t", " Bearer {t}", "Bearer",
    "Bearer ", "Bearer {t} {t}", "Bearer{t}", "Bearer {t}\x7f",
])
def test_a_sloppy_header_is_refused_with_401(site: Site, header: str) -> None:
    value = header.replace("{t}", TOKENS["website"])
    response = site.get("/v1/event-types", token=None, headers={"Authorization": value})
    assert_problem(response, 401, "/problems/unauthorized")
    assert response.headers["www-authenticate"].startswith('Bearer realm="calpool"')


@pytest.mark.parametrize("second", ["website", "desk", "nope"])
def test_two_authorization_headers_are_refused(site: Site, second: str) -> None:
    headers = [("Authorization", f"Bearer {TOKENS['website']}"),
               ("Authorization", f"Bearer {TOKENS.get(second, second)}")]
    response = site.client.get("/v1/event-types", headers=headers)
    assert_problem(response, 401, "/problems/unauthorized")
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
