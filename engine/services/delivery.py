"""Who writes which copy of a booking's event, and which email addresses the
configuration reveals: the rules the catalog is built with.

Google Calendar and Microsoft 365 invite the rooms and people of the
owner's own account themselves (a resource attendee on the owner's event;
the provider fills the room's calendar), so calpool writes only the owner's
copy there.  Everything else — CalDAV, and any calendar of another account
— gets its copy written by calpool.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from engine.services.drafts import Delivery

INVITING_PROVIDERS: frozenset[str] = frozenset({"google", "microsoft"})
"""Providers that deliver an invitation into calendars of the same account."""


@dataclass(frozen=True, slots=True)
class CalendarSource:
    """Where a calendar lives, as far as the rules care: its account key,
    that account's provider, the provider's id of the calendar and the
    user acted as (a Google subject), if any."""

    account: str
    provider: str
    external_id: str
    subject: str | None = None


def known_addresses(sources: Mapping[str, CalendarSource]) -> dict[str, str]:
    """Email addresses of the calendars whose source reveals one (a subject
    or a calendar id that is an address, not a path), for the event's
    organizer and attendees; calendar key → address."""
    found = {}
    for key, source in sources.items():
        for candidate in (source.subject, source.external_id):
            if candidate and "@" in candidate and "/" not in candidate:
                found[key] = candidate
                break
    return found


def invitation_delivery(
    sources: Mapping[str, CalendarSource],
    inviting: Collection[str] = INVITING_PROVIDERS,
) -> Delivery:
    """``delivers(owner, other)``: whether the owner's provider puts the
    event into ``other``'s calendar by itself — an inviting provider, and
    both calendars in one account."""

    def delivers(owner: str, other: str) -> bool:
        mine, theirs = sources[owner], sources[other]
        return mine.provider in inviting and theirs.account == mine.account

    return delivers
