"""The OpenAPI document says what the server checks (issue 23).

FastAPI writes every ``start``, ``end``, ``expires_in`` and ``event_type``
as a plain string, although the server refuses most strings there.
:func:`describe_checks` adds what the server really requires, so a client
(or a fuzzer) reading the document knows:

- ``start`` / ``end`` (query parameters and body fields): ``format:
  date-time``.  The server also takes a date (the start of that day) and a
  date-time without an offset (read in the route's zone), and requires the
  years 1900 to 8999 (``daemon.inputs``); the description says so.
- ``expires_in``: the duration pattern of ``daemon.config.durations``.
- ``event_type`` of a request body: an enum of the configured event types
  (the document is built once per process, so a reload that adds an event
  type shows in it after a restart).
- ``attendee.email``: ``format: email`` (checked with ``email-validator``).
- ``timezone`` (query): an enum of the zone database's IANA names
  (:func:`engine.core.zones.iana_zones`, what ``daemon.inputs.zone_name``
  accepts).
- ``calendar`` (query of the bookings list): an enum of the configured
  calendars.
- ``cycle`` (query of a pool report): ``current``, ``previous`` or an ISO
  date, as a pattern (the date must also exist and lie in the years
  instants may lie in).

Found by Schemathesis (``tests/e2e/test_http_fuzz.py``): an empty
``timezone`` or ``calendar`` and a ``cycle`` of digits were "schema-valid"
and refused with 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.core.zones import iana_zones

DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
CYCLE_PATTERN = r"^(current|previous|[0-9]{4}-[0-9]{2}-[0-9]{2})$"
TIME_NOTE = ("; also a date (the start of that day) or a date-time without an offset; years "
             "1900 to 8999")


def describe_checks(document: dict[str, Any], event_types: Iterable[str],
                    calendars: Iterable[str] = ()) -> None:
    """Tighten ``document`` in place (see the module docstring)."""
    keys = sorted(event_types)
    query_checks: dict[str, dict[str, Any]] = {
        "timezone": {"enum": sorted(iana_zones())},
        "cycle": {"pattern": CYCLE_PATTERN},
    }
    if calendar_keys := sorted(calendars):
        query_checks["calendar"] = {"enum": calendar_keys}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") != "query":
                    continue
                name = parameter.get("name")
                if name in ("start", "end"):
                    _as_date_time(parameter)
                elif name in query_checks:
                    _restrict(parameter, query_checks[name])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                _tighten_body(document, body["schema"], keys, seen=set())


def _tighten_body(document: dict[str, Any], schema: dict[str, Any], keys: list[str],
                  seen: set[str]) -> None:
    resolved = _resolved(document, schema, seen)
    if resolved is None:
        return
    for name, field in resolved.get("properties", {}).items():
        for string in _strings(field):
            if name == "start":
                string["format"] = "date-time"
                field["description"] = field.get("description", "") + TIME_NOTE
            elif name == "expires_in":
                string["pattern"] = DURATION_PATTERN
            elif name == "event_type" and keys:
                string["enum"] = keys
            elif name == "email":
                string["format"] = "email"
        for nested in _objects(field):
            _tighten_body(document, nested, keys, seen)


def _resolved(document: dict[str, Any], schema: dict[str, Any],
              seen: set[str]) -> dict[str, Any] | None:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    if ref in seen:
        return None
    seen.add(ref)
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _alternatives(field: dict[str, Any]) -> list[dict[str, Any]]:
    return [field, *field.get("anyOf", ())]


def _strings(field: dict[str, Any]) -> list[dict[str, Any]]:
    return [each for each in _alternatives(field) if each.get("type") == "string"]


def _objects(field: dict[str, Any]) -> list[dict[str, Any]]:
    return [each for each in _alternatives(field)
            if "$ref" in each or each.get("type") == "object"]


def _as_date_time(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    for string in _alternatives(schema):
        if string.get("type") == "string":
            string["format"] = "date-time"
    parameter["description"] = parameter.get("description", "") + TIME_NOTE


def _restrict(parameter: dict[str, Any], check: dict[str, Any]) -> None:
    for string in _alternatives(parameter.get("schema", {})):
        if string.get("type") == "string":
            string.update(check)
