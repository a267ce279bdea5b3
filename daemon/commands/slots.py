"""``calpool slots``: the bookable slots of an event type, from the cache."""

from __future__ import annotations

import json
from datetime import timedelta

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import local_iso, slots_document
from engine.core.model import Interval

DEFAULT_SPAN = timedelta(days=7)
STALE_WORDS = {
    "never_synced": "has never synced",
    "failed": "failed its last sync",
    "stale": "has not synced recently",
}


def run(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    event_type = invocation.event_type()
    zone = args.timezone or config.calendars[event_type.owner].timezone
    app = open_app(invocation)
    try:
        now = app.clock()
        start = args.start.in_zone(zone) if args.start else now
        end = args.end.in_zone(zone) if args.end else start + DEFAULT_SPAN
        if end <= start:
            raise CommandFailed("--end must be later than --start", 2)
        if end - start > event_type.horizon:
            raise CommandFailed(
                f"the range is longer than the event type's horizon ({event_type.horizon})", 2
            )
        answer = app.slots.slots(event_type.key, Interval(start, end), now=now)
    finally:
        app.close()
    document = slots_document(answer, zone)
    if args.json:
        json.dump(document, invocation.out, indent=2)
        invocation.out.write("\n")
    else:
        for slot in document["slots"]:
            rooms = "; ".join(
                f"{pool}: {', '.join(members)}" for pool, members in slot["rooms_available"].items()
            )
            print(f"{slot['start']} - {slot['end']}  {rooms}".rstrip(), file=invocation.out)
        if not document["slots"]:
            print("no bookable slots in this range", file=invocation.out)
    for stale in answer.stale_calendars:
        since = local_iso(stale.last_synced, zone) or "never"
        words = STALE_WORDS.get(stale.reason, f"has {stale.reason} ({stale.error})")
        print(
            f"warning: calendar {stale.calendar} {words}, so its free time "
            f"may be wrong (last synced: {since})",
            file=invocation.err,
        )
    return 0
