"""``calpool link create``: a one-time booking link, printed once.

The link's token is shown only here (the database keeps its sha256), so the
URL goes to stdout on a line of its own, ready for a script; a second line
says until when it can be used and for whom.
"""

from __future__ import annotations

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import local_iso
from engine.core.model import Attendee
from engine.services.links import InvalidLink


def create(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    event_type = invocation.event_type()
    if (args.name is None) != (args.email is None):
        raise CommandFailed("give --name and --email together to prefill the attendee", 2)
    attendee = None
    if args.name is not None:
        attendee = Attendee(args.name.strip(), args.email.strip())
    app = open_app(invocation, load_cache=False)
    try:
        try:
            issued = app.links.create(event_type.key, app.clock(), expires_in=args.expires,
                                  attendee=attendee)
        except InvalidLink as exc:
            option = "--expires" if exc.field == "expires_in" else f"--{exc.field.split('.')[-1]}"
            raise CommandFailed(f"{option}: {exc.detail}", 2) from exc
    finally:
        app.close()
    zone = config.calendars[event_type.owner].timezone
    who = f", for {attendee.name} <{attendee.email}>" if attendee is not None else ""
    print(f"{config.http.public_url}/book/{issued.token}", file=invocation.out)
    print(f"expires {local_iso(issued.link.expires_at, zone)} ({event_type.key}{who}); "
          f"id {issued.id}", file=invocation.out)
    return 0
