"""The scope matrix: every route the hook serves, asked with no token, an
unknown token, and a token of each single scope (``slots``, ``book``,
``admin``), answers as interface.md documents it: a route that needs a
scope admits exactly the token that holds it (its documented success
status) and refuses the others with 403 ``/problems/forbidden``, and a
missing or unknown token with 401 ``/problems/unauthorized``; a route that
needs no bearer token answers the same whatever token is sent.

The routes are enumerated from the app itself, so a route added without an
entry in :data:`MATRIX` fails :func:`test_every_served_route_has_an_entry`.
Each cell is asked with data of its own (a fresh booking, link or slot), on
Radicale, so a success is a real one and a refusal is not a 404 in disguise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from daemon.http.app import create_app
from daemon.http.auth import required_scope
from daemon.wiring import build
from tests.daemon.http.bookings_site import (
    DavSite,
    dav_config,
    radicale,  # noqa: F401 (a fixture)
)
from tests.daemon.http.conftest import (
    NOW,
    TOKEN_ENV,
    TOKENS,
    Site,
    assert_problem,
    digest,
)
from tests.support.caldav_servers import Server
from tests.support.sites import migrated_config

SCOPES = ("slots", "book", "admin")
# One token per scope, and one that holds all three to prepare the data.
SCOPE_TOKENS = {scope: f"only-{scope}-token" for scope in SCOPES}
ALL = "every-scope-token"
UNKNOWN = "a-token-nobody-configured"
# The columns of the matrix: what each request presents.
CALLERS = ("none", "unknown", *SCOPES)

BERLIN = ZoneInfo("Europe/Berlin")


def matrix_config(server: Server) -> tuple[str, dict[str, str]]:
    """The hook tests' config on ``server``, with one token per scope and
    ``consult`` public (so ``/meet/consult`` serves a page)."""
    config, ids = dav_config(server)
    # The conftest's tokens stay (their variables are set by make_site);
    # these are added after them.
    for scope, token in SCOPE_TOKENS.items():
        config.api_token(f"only-{scope}", sha256=digest(token), scopes=[scope])
    config.api_token("all", sha256=digest(ALL), scopes=list(SCOPES))
    config.document["event_types"]["consult"]["public"] = True
    return config.text(), ids


@dataclass
class Call:
    method: str
    url: str
    json: Any = None
    form: dict[str, str] | None = None


class World:
    """Fresh data for each cell: slots on alice's grid not yet handed out,
    bookings, links and manage tokens made with the all-scope token."""

    def __init__(self, dav: DavSite) -> None:
        self.dav = dav
        self._slots = self._grid()

    @staticmethod
    def _grid() -> Iterator[str]:
        # alice works 09:00-12:00 Berlin on weekdays; consult is 30 minutes
        # with a 30-day horizon from Thursday 2027-03-25.
        first = date(2027, 3, 26)
        for day in (first + timedelta(days=n) for n in range(25)):
            if day.weekday() >= 5:
                continue
            for hour, minute in itertools.product((9, 10, 11), (0, 30)):
                yield datetime.combine(day, time(hour, minute), BERLIN).isoformat()

    def slot(self) -> str:
        return next(self._slots)

    def call(self, call: Call, token: str | None) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.dav.site.client.request(call.method, call.url, json=call.json,
                                            data=call.form, headers=headers,
                                            follow_redirects=False)

    def attendee(self) -> dict[str, str]:
        return {"name": "Matrix Guest", "email": "guest@example.com"}

    def booking(self) -> dict[str, Any]:
        """A booking just made; its document (with ``manage_url``)."""
        answer = self.call(Call("POST", "/v1/bookings", {
            "event_type": "consult", "start": self.slot(), "attendee": self.attendee()}), ALL)
        assert answer.status_code in (201, 202), answer.text
        document: dict[str, Any] = answer.json()
        return document

    def manage_token(self) -> str:
        return urlsplit(self.booking()["manage_url"]).path.rsplit("/", 1)[1]

    def link(self) -> str:
        answer = self.call(Call("POST", "/v1/links", {"event_type": "consult"}), ALL)
        assert answer.status_code == 201, answer.text
        token: str = answer.json()["token"]
        return token


@dataclass(frozen=True)
class Entry:
    """One row: the scope the route needs (``None``: no bearer token), the
    status it answers when admitted, and how to make its request."""

    scope: str | None
    success: int
    request: Callable[[World], Call]


def _booking_form(world: World) -> dict[str, str]:
    return {"start": world.slot(), "name": "Page Guest", "email": "page@example.com",
            "notes": "", "timezone": "Europe/Berlin"}


MATRIX: dict[tuple[str, str], Entry] = {
    ("GET", "/openapi.json"): Entry(None, 200, lambda w: Call("GET", "/openapi.json")),
    ("GET", "/healthz"): Entry(None, 200, lambda w: Call("GET", "/healthz")),
    # Nothing has synced in this site: not ready, whoever asks.
    ("GET", "/readyz"): Entry(None, 503, lambda w: Call("GET", "/readyz")),
    ("GET", "/metrics"): Entry(None, 200, lambda w: Call("GET", "/metrics")),
    ("GET", "/v1/event-types"): Entry("slots", 200, lambda w: Call("GET", "/v1/event-types")),
    ("GET", "/v1/event-types/{key}/slots"): Entry(
        "slots", 200, lambda w: Call("GET", "/v1/event-types/consult/slots")),
    ("GET", "/v1/pools"): Entry("slots", 200, lambda w: Call("GET", "/v1/pools")),
    ("GET", "/v1/pools/{key}/report"): Entry(
        "admin", 200, lambda w: Call("GET", "/v1/pools/small/report")),
    ("POST", "/v1/bookings"): Entry("book", 201, lambda w: Call("POST", "/v1/bookings", {
        "event_type": "consult", "start": w.slot(), "attendee": w.attendee()})),
    ("GET", "/v1/bookings"): Entry("book", 200, lambda w: Call("GET", "/v1/bookings")),
    ("GET", "/v1/bookings/{booking_id}"): Entry(
        "book", 200, lambda w: Call("GET", f"/v1/bookings/{w.booking()['id']}")),
    ("DELETE", "/v1/bookings/{booking_id}"): Entry(
        "book", 200, lambda w: Call("DELETE", f"/v1/bookings/{w.booking()['id']}")),
    ("POST", "/v1/bookings/{booking_id}/reschedule"): Entry(
        "book", 200, lambda w: Call("POST", f"/v1/bookings/{w.booking()['id']}/reschedule",
                                    {"start": w.slot()})),
    ("POST", "/v1/links"): Entry(
        "admin", 201, lambda w: Call("POST", "/v1/links", {"event_type": "consult"})),
    ("GET", "/v1/links"): Entry("admin", 200, lambda w: Call("GET", "/v1/links")),
    ("DELETE", "/v1/links/{token}"): Entry(
        "admin", 204, lambda w: Call("DELETE", f"/v1/links/{w.link()}")),
    # Authorised by the link token in the path, not by a bearer token.
    ("GET", "/v1/links/{token}/slots"): Entry(
        None, 200, lambda w: Call("GET", f"/v1/links/{w.link()}/slots")),
    ("POST", "/v1/links/{token}/bookings"): Entry(
        None, 201, lambda w: Call("POST", f"/v1/links/{w.link()}/bookings",
                                  {"start": w.slot(), "attendee": w.attendee()})),
    # Authenticated by each channel's token: no channel here, so 404.
    ("POST", "/hooks/{provider}"): Entry(
        None, 404, lambda w: Call("POST", "/hooks/google", {"id": "no-such-channel"})),
    # The customer pages.
    ("GET", "/book/{token}"): Entry(None, 200, lambda w: Call("GET", f"/book/{w.link()}")),
    ("POST", "/book/{token}"): Entry(
        None, 303, lambda w: Call("POST", f"/book/{w.link()}", form=_booking_form(w))),
    ("GET", "/meet/{event_type}"): Entry(None, 200, lambda w: Call("GET", "/meet/consult")),
    ("POST", "/meet/{event_type}"): Entry(
        None, 303, lambda w: Call("POST", "/meet/consult", form=_booking_form(w))),
    ("GET", "/manage/{token}"): Entry(
        None, 200, lambda w: Call("GET", f"/manage/{w.manage_token()}")),
    ("GET", "/manage/{token}/cancel"): Entry(
        None, 303, lambda w: Call("GET", f"/manage/{w.manage_token()}/cancel")),
    ("GET", "/manage/{token}/reschedule"): Entry(
        None, 303, lambda w: Call("GET", f"/manage/{w.manage_token()}/reschedule")),
    ("POST", "/manage/{token}/cancel"): Entry(
        None, 303, lambda w: Call("POST", f"/manage/{w.manage_token()}/cancel",
                                  form={"timezone": "Europe/Berlin"})),
    ("POST", "/manage/{token}/reschedule"): Entry(
        None, 303, lambda w: Call("POST", f"/manage/{w.manage_token()}/reschedule",
                                  form={"start": w.slot(), "timezone": "Europe/Berlin"})),
    ("GET", "/assets/{name}"): Entry(None, 200, lambda w: Call("GET", "/assets/calpool.css")),
}


def presented(caller: str) -> str | None:
    return {"none": None, "unknown": UNKNOWN}.get(caller, SCOPE_TOKENS.get(caller))


def expected(entry: Entry, caller: str) -> int:
    if entry.scope is None:
        return entry.success
    if caller in ("none", "unknown"):
        return 401
    return entry.success if caller == entry.scope else 403


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, radicale: Server,  # noqa: F811
          ) -> Iterator[World]:
    # make_site is function-scoped; one site for the whole matrix is built
    # the same way here.
    patch = pytest.MonkeyPatch()
    patch.setenv(TOKEN_ENV, TOKENS["website"])
    folder = tmp_path_factory.mktemp("scope-matrix")
    (folder / "desk.token").write_text(TOKENS["desk"] + "\n", encoding="utf-8")
    text, ids = matrix_config(radicale)
    clock = [NOW]
    app = build(migrated_config(folder, text), clock=lambda: clock[0])
    api = create_app(app)
    client = TestClient(api, raise_server_exceptions=False)
    yield World(DavSite(Site(app, api, client, clock), radicale, ids))
    client.close()
    app.close()
    patch.undo()


def served_routes(world: World) -> dict[tuple[str, str], APIRoute | None]:
    """Every (method, path) the app serves (HEAD, which Starlette adds to
    GET routes, aside), with its route when it is an API route."""
    found: dict[tuple[str, str], APIRoute | None] = {}
    for context in iter_route_contexts(world.dav.site.api.routes):
        route = context.route
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found[(method, context.path)] = route if isinstance(route, APIRoute) else None
    return found


def test_every_served_route_has_an_entry(world: World) -> None:
    served = served_routes(world)
    assert sorted(served) == sorted(MATRIX), "routes without an entry, or entries of none"


def test_each_entry_states_the_scope_its_route_asks_for(world: World) -> None:
    for key, route in served_routes(world).items():
        scope = required_scope(route) if route is not None else None
        assert scope == MATRIX[key].scope, key


def test_the_scopes_are_those_interface_md_documents() -> None:
    """Event types, slots and pools: ``slots``; bookings: ``book``; links
    and pool reports: ``admin``; everything else no bearer token."""
    for (_, path), entry in MATRIX.items():
        if path.startswith("/v1/links/{token}/") or not path.startswith("/v1/"):
            assert entry.scope is None, path
        elif path.startswith(("/v1/event-types", "/v1/pools")):
            assert entry.scope == ("admin" if path.endswith("/report") else "slots"), path
        elif path.startswith("/v1/bookings"):
            assert entry.scope == "book", path
        else:
            assert path.startswith("/v1/links") and entry.scope == "admin", path


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda key: f"{key[0]} {key[1]}")
def test_route_answers_the_documented_status(world: World, key: tuple[str, str],
                                             caller: str) -> None:
    entry = MATRIX[key]
    call = entry.request(world)
    answer = world.call(call, presented(caller))
    want = expected(entry, caller)
    if want == 401:
        assert_problem(answer, 401, "/problems/unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer ")
    elif want == 403:
        document = assert_problem(answer, 403, "/problems/forbidden")
        assert document["scope"] == entry.scope
    else:
        assert answer.status_code == want, (call, answer.text[:500])
        if entry.scope is None and answer.headers.get("content-type", "").startswith(
                "application/problem+json"):
            assert answer.json()["type"] not in ("/problems/unauthorized",
                                                 "/problems/forbidden"), answer.text
