"""What a client may send, checked in one place for every route and the CLI.

- **Zones** are IANA names of the zone database
  (:func:`engine.core.zones.iana_zones`): a directory of the database
  (``Europe``), ``localtime``, ``posixrules``, ``Factory``, ``right/…``,
  ``posix/…`` and overlong names are refused before any file is opened, and
  a refused name is quoted cut short.
- **Instants** lie in ``[EARLIEST, LATEST)`` (the years 1900 to 8999, UTC),
  so that adding a horizon, a buffer or an offset to one can never leave
  the range ``datetime`` holds: ``9999-12-31T23:59:59-14:00`` is refused
  with a sentence, never an ``OverflowError``.
- **Names and notes** hold no control character (:func:`check_name`,
  :func:`check_notes`): they are refused, not stripped, before anything is
  written, so what the client sent is what the provider gets.
- **Email addresses** are read by ``email-validator`` (:func:`check_email`).

Each check raises :class:`InputError` (a ``ValueError``) with one sentence
fit for a user; the HTTP hook turns it into a ``/problems/validation``
naming the field, the CLI into a usage error (exit 2).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime

from email_validator import EmailNotValidError, validate_email

from engine.core.zones import (
    Boundary,
    UnknownZoneError,
    from_us,
    local_day,
    shorten,
    wall_us,
    zone_info,
)
from engine.services.pools import CURRENT, PREVIOUS

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
TIME_EXAMPLES = "2027-03-29, 2027-03-29T09:30 or 2027-03-29T09:30:00+02:00"
# Longer than any ISO 8601 date-time with microseconds and an offset.
TIME_MAX = 64


class InputError(ValueError):
    """A value a client sent is refused; the message says why."""


def zone_name(text: str) -> str:
    """``text`` when it names an IANA time zone, else :class:`InputError`."""
    try:
        zone_info(text)
    except UnknownZoneError:
        raise InputError(f"{shorten(text)!r} is not an IANA time zone like "
                         "'Europe/Berlin'") from None
    return text


def check_instant(value: datetime) -> datetime:
    """An aware ``value`` within ``[EARLIEST, LATEST)``, else :class:`InputError`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{value.isoformat()!r} has no offset")
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # the offset takes it past year 1 or 9999
        in_range = False
    if not in_range:
        raise InputError(f"{value.isoformat()!r} must lie between the years "
                         f"{EARLIEST.year} and {LATEST.year - 1}")
    return value


def parse_cycle(text: str) -> str | date:
    """A pool report's cycle: ``current``, ``previous`` or an ISO date (a day
    in the cycle wanted) within the years instants may lie in; else
    :class:`InputError` with a sentence."""
    if text in (CURRENT, PREVIOUS):
        return text
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{shorten(text)!r} is not current, previous or an ISO date like "
                         "2027-03-29") from None
    if not EARLIEST.date() <= day < LATEST.date():
        raise InputError(f"{text!r} must lie between the years {EARLIEST.year} and "
                         f"{LATEST.year - 1}")
    return day


def parse_instant(text: str, zone: str) -> datetime:
    """The instant ISO 8601 ``text`` names: a date is the start of that day
    in ``zone``, a date-time without an offset is read in ``zone`` as the
    engine reads local times (a time in a spring-forward gap is the
    transition, one in a fall-back fold its first occurrence).  Raises
    :class:`InputError` for a malformed text, an unknown zone or an instant
    out of range."""
    shown = shorten(text, TIME_MAX)
    text = text.strip()
    if "T" in text and " " in text:
        # An unencoded '+' of an offset arrives as a space in a query string.
        text = text.replace(" ", "+")
    value: date | datetime
    try:
        if len(text) > TIME_MAX:
            raise ValueError(text)
        value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{shown!r} is not an ISO 8601 date or date-time like "
                         f"{TIME_EXAMPLES}") from None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return check_instant(value)
    zone_name(zone)
    # A local time is checked before it is placed in its zone, which
    # near year 1 or 9999 would itself overflow.
    if not EARLIEST.year <= value.year < LATEST.year:
        raise InputError(f"{shown!r} must lie between the years "
                         f"{EARLIEST.year} and {LATEST.year - 1}")
    if isinstance(value, datetime):
        day = local_day(zone, value.date())
        return check_instant(from_us(day.boundary(wall_us(value.time()), Boundary.FIRST)))
    return check_instant(from_us(local_day(zone, value).start))


# Characters refused in names and notes: control characters (C0, DEL, C1:
# NUL, ESC, VT… end up in the provider's event and in every client that
# shows it), lone surrogates (not encodable), line and paragraph separators,
# and the bidirectional overrides and isolates that make a name read
# otherwise than it is.  Notes keep tab and line breaks.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NOTES_MAY_HOLD = frozenset("\t\n\r")


def _refused(char: str, allowed: frozenset[str]) -> bool:
    if char in allowed:
        return False
    return (unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI
            or char in "\u2028\u2029")


def _check_characters(text: str, allowed: frozenset[str]) -> str:
    for position, char in enumerate(text):
        if _refused(char, allowed):
            raise InputError(f"contains the control character U+{ord(char):04X} at position "
                             f"{position}; send text without it")
    return text


def check_name(text: str) -> str:
    """A name on one line without control characters (else :class:`InputError`)."""
    return _check_characters(text, frozenset())


def check_notes(text: str) -> str:
    """Free text: tabs and line breaks, no other control character."""
    return _check_characters(text, _NOTES_MAY_HOLD)


def check_email(text: str) -> str:
    """The address in its normalized form (the domain in lower case), as
    ``email-validator`` reads it: no quoted local part, no domain literal,
    no special-use domain (``.test``, ``.invalid``, ``localhost``), nothing
    an ``ATTENDEE`` or ``mailto:`` line could be broken with (``;``, ``:``,
    quotes, spaces, control characters).  DNS is not asked."""
    try:
        return str(validate_email(text.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InputError(f"{shorten(text.strip())!r} is not an email address: {exc}") from None
