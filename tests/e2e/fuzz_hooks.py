"""Schemathesis hooks that fill in real values, as a user scripting
against the hook would: slot starts the daemon offers, its event types, a
valid attendee, booking ids and link tokens that exist.

About half of the generated bodies and path parameters are replaced (the
other half stay as Schemathesis made them, so the validation paths are
fuzzed too).  The values are read from the running daemon, named by
:func:`learn` (the pytest suite) or by ``CALPOOL_FUZZ_URL`` and
``CALPOOL_FUZZ_TOKEN`` (the CLI's long run, which loads this module with
``SCHEMATHESIS_HOOKS=tests.e2e.fuzz_hooks``), and read again every
``REFRESH_EVERY`` uses so new bookings and links come into play.
Without them (a run against another URL) nothing is replaced.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from typing import Any

import httpx
import schemathesis
import schemathesis.transport.requests as schemathesis_requests

# calpool's CalDAV client (caldav → niquests) installs urllib3-future, which
# takes the ``urllib3`` name: a pool manager's ``pools`` is then its
# TrafficPolice, which has no ``keys()``, and Schemathesis 4's count of open
# connections (its resend-once rule for a dropped keep-alive connection)
# raises on every request.  The count falls back to the pools' registry size.
_count_opened = schemathesis_requests._count_opened_connections


def _count_opened_connections(session: Any) -> int:
    try:
        return _count_opened(session)
    except AttributeError:
        return sum(manager.pools.rsize() for adapter in session.adapters.values()
                   for manager in (adapter.poolmanager, *adapter.proxy_manager.values()))


schemathesis_requests._count_opened_connections = _count_opened_connections

REFRESH_EVERY = 40
_random = random.Random(int(os.environ.get("CALPOOL_FUZZ_SEED", "23")))
_lock = threading.Lock()
_state: dict[str, Any] = {"url": os.environ.get("CALPOOL_FUZZ_URL"),
                          "token": os.environ.get("CALPOOL_FUZZ_TOKEN"), "uses": 0,
                          "event_types": [], "starts": {}, "bookings": [], "links": []}


def learn(url: str, token: str) -> None:
    """Read real values from the daemon at ``url`` with ``token`` (all scopes)."""
    with _lock:
        _state.update(url=url, token=token)
        _refresh()


def _refresh() -> None:
    url, token = _state["url"], _state["token"]
    if not url or not token:
        return
    with httpx.Client(base_url=url, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        types = [t["key"] for t in client.get("/v1/event-types").json()["event_types"]]
        starts = {key: [slot["start"] for slot in
                        client.get(f"/v1/event-types/{key}/slots").json()["slots"]]
                  for key in types}
        bookings = [b["id"] for b in client.get("/v1/bookings").json()["bookings"]]
        # The list of links shows no tokens: two new ones each time, the
        # last ten kept (used ones give the 410 paths).
        tokens = list(_state["links"])
        for _ in range(2):
            made = client.post("/v1/links", json={"event_type": _random.choice(types)})
            tokens.append(made.json()["token"])
        tokens = tokens[-10:]
    _state.update(event_types=types, starts=starts, bookings=bookings, links=tokens)


def _tick() -> bool:
    """Whether to replace this value (about half the time); refreshes the
    real values now and then."""
    with _lock:
        _state["uses"] += 1
        if _state["uses"] % REFRESH_EVERY == 0:
            # A refresh that fails keeps the values known so far.
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                _refresh()
        return bool(_state["event_types"]) and _random.random() < 0.5


def _start(event_type: str | None) -> str | None:
    starts = _state["starts"].get(event_type) or [
        s for values in _state["starts"].values() for s in values]
    return _random.choice(starts) if starts else None


def _body(path: str, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if "event_type" in body or path in ("/v1/bookings", "/v1/links"):
        body["event_type"] = _random.choice(_state["event_types"])
    if "start" in body or path.endswith(("/bookings", "/reschedule")):
        start = _start(body.get("event_type"))
        if start is not None:
            body["start"] = start
    if path == "/v1/bookings" or ("attendee" in body and path != "/v1/links"):
        n = _random.randrange(10_000)
        body["attendee"] = {"name": f"Fuzz Guest {n}", "email": f"guest{n}@example.com"}
    return body


def _path_parameters(path: str, params: Any) -> Any:
    if not isinstance(params, dict):
        return params
    params = dict(params)
    if "booking_id" in params and _state["bookings"]:
        params["booking_id"] = _random.choice(_state["bookings"])
    if "token" in params and _state["links"]:
        params["token"] = _random.choice(_state["links"])
    if "key" in params:
        params["key"] = ("berlin-rooms" if path.startswith("/v1/pools")
                         else _random.choice(_state["event_types"]))
    return params


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Real values in about half of the positive cases; negative cases (made
    to break the document) are left as generated, so that what they break
    stays broken."""
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return case
    if not _tick():
        return case
    path = case.operation.path
    if case.body is not None:
        case.body = _body(path, case.body)
    if case.path_parameters:
        case.path_parameters = _path_parameters(path, case.path_parameters)
    return case
