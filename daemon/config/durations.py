"""Duration strings of the config file and the command line.

A duration is one or more ``<integer><unit>`` parts, largest unit first, with
units ``d`` (days), ``h``, ``m`` and ``s``: ``"0s"``, ``"90s"``, ``"15m"``,
``"2h"``, ``"7d"``, ``"1h30m"``.  Weeks and months are left out on purpose:
a month has no fixed length, and ``"7d"`` says a week just as clearly.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
EXAMPLES = '"90s", "15m", "2h", "7d" or "1h30m"'


def parse_duration(text: str) -> timedelta:
    """Return the ``timedelta`` a duration string stands for.

    Raises ``ValueError`` with a sentence fit for a user when ``text`` is not
    a duration string.
    """
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration like {EXAMPLES}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """The shortest duration string for ``value`` (whole seconds)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_RATE_UNITS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1),
               "d": timedelta(days=1)}


def parse_rate(text: str) -> tuple[int, timedelta]:
    """``"20/h"`` → ``(20, 1 hour)``: a count per unit (``s``, ``m``, ``h``,
    ``d``) or per duration (``"5/15m"``).  Raises ``ValueError``."""
    count, _, per = text.strip().partition("/")
    if not count.strip().isdigit() or not per.strip() or int(count) < 1:
        raise ValueError(f"{text!r} is not a rate like '20/h' or '5/15m'")
    per = per.strip()
    window = _RATE_UNITS.get(per) or parse_duration(per)
    if window <= timedelta(0):
        raise ValueError(f"{text!r}: the time of a rate must be longer than 0s")
    return int(count), window
