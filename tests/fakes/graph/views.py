"""Rendering stored events the way Graph answers them, and the OData bits of the query.

Graph answers ``start``/``end`` in UTC unless the request says
``Prefer: outlook.timezone="…"``; page sizes come from ``Prefer:
odata.maxpagesize=N``. ``singleValueExtendedProperties`` are only returned when
asked for with ``$expand=singleValueExtendedProperties($filter=id eq '…')``.
https://learn.microsoft.com/en-us/graph/api/user-list-calendarview
https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
https://learn.microsoft.com/en-us/graph/api/event-delta
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.graph import times
from tests.fakes.graph.calendars import Instance

_QUOTED = r"'((?:[^']|'')*)'"
_EXPAND = re.compile(
    r"^singleValueExtendedProperties(?:\(\$filter=id eq " + _QUOTED + r"\))?$", re.IGNORECASE
)
_FILTER_BY_PROPERTY = re.compile(
    r"^singleValueExtendedProperties/any\((\w+):\s*\1/id eq "
    + _QUOTED
    + r" and \1/value eq "
    + _QUOTED
    + r"\)$"
)


@dataclass(frozen=True)
class Preferences:
    """What the ``Prefer`` header(s) asked for."""

    max_page_size: int | None
    timezone: str

    @classmethod
    def of(cls, headers: Mapping[str, str], prefer_values: list[str]) -> Preferences:
        size: int | None = None
        zone = "UTC"
        for value in prefer_values:
            for part in value.split(","):
                name, _, setting = part.strip().partition("=")
                if name.strip().lower() == "odata.maxpagesize" and setting.strip().isdigit():
                    size = int(setting)
                elif name.strip().lower() == "outlook.timezone":
                    zone = setting.strip().strip('"')
        return cls(max_page_size=size, timezone=zone)


def expand_filter(expand: str | None) -> tuple[bool, str | None]:
    """(whether extended properties were asked for, the one property id to keep or None)."""
    if not expand:
        return False, None
    match = _EXPAND.match(expand.strip())
    if match is None:
        raise ValueError(f"$expand={expand!r} is not supported")
    return True, match.group(1).replace("''", "'") if match.group(1) is not None else None


def property_filter(filter_text: str) -> tuple[str, str]:
    """(property id, value) of the one ``$filter`` form the fake understands:

    ``singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…')``.
    """
    match = _FILTER_BY_PROPERTY.match(filter_text.strip())
    if match is None:
        raise ValueError(f"$filter={filter_text!r} is not supported by the fake")
    return match.group(2).replace("''", "'"), match.group(3).replace("''", "'")


_FILTER_BY_ICAL_UID = re.compile(r"^iCalUId eq " + _QUOTED + r"$", re.IGNORECASE)


def ical_uid_filter(filter_text: str) -> str | None:
    """The iCalUId of ``$filter=iCalUId eq '…'`` (how a client finds an attendee's or a
    room's copy of a meeting by the organizer's, or back); ``None`` for another filter.

    https://learn.microsoft.com/en-us/graph/api/resources/event (iCalUId: filterable)
    """
    match = _FILTER_BY_ICAL_UID.match(filter_text.strip())
    return match.group(1).replace("''", "'") if match else None


def has_property(resource: dict[str, Any], property_id: str, value: str) -> bool:
    return any(
        p.get("id", "").lower() == property_id.lower() and p.get("value") == value
        for p in resource.get("singleValueExtendedProperties") or []
    )


def render(
    resource: dict[str, Any],
    preferences: Preferences,
    *,
    expand: tuple[bool, str | None] = (False, None),
) -> dict[str, Any]:
    """The JSON Graph answers for a stored resource."""
    shown = copy.deepcopy(resource)
    for side in ("start", "end"):
        if side in shown:
            shown[side] = times.format_instant(
                times.parse_instant(shown[side]), preferences.timezone
            )
    wanted, only = expand
    properties = shown.pop("singleValueExtendedProperties", None) or []
    if wanted:
        shown["singleValueExtendedProperties"] = [
            p for p in properties if only is None or p.get("id", "").lower() == only.lower()
        ]
    if shown.get("type") not in {"occurrence", "exception"}:
        shown.pop("originalStart", None)
    return shown


def render_instance(
    instance: Instance,
    preferences: Preferences,
    *,
    expand: tuple[bool, str | None] = (False, None),
) -> dict[str, Any]:
    return render(instance.resource, preferences, expand=expand)
