"""What the demo prints once it answers: where things are, and what to try.

The last line is for programs (``make demo`` wrappers, the end-to-end
test): ``CALPOOL_DEMO url=<url> token=<token>``, exactly.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.demo import sample


@dataclass(frozen=True, slots=True)
class Site:
    url: str
    token: str
    caldav_url: str
    config_path: Path
    folder: Path
    first_slot: datetime | None
    """Start of the first free ``consultation`` slot, for the booking example."""
    routes: frozenset[str] | None
    """Paths the running hook serves (its OpenAPI document), so examples of
    routes this build does not have yet are left out; None: not known."""
    link_token: str | None = None
    """A ready-made one-time link of ``consultation`` for the customer page."""

    def serves(self, path: str) -> bool:
        return self.routes is None or path in self.routes


def machine_line(url: str, token: str) -> str:
    return f"CALPOOL_DEMO url={url} token={token}"


def banner(site: Site) -> str:
    auth = '-H "Authorization: Bearer $TOKEN"'
    start = (site.first_slot.astimezone(sample.ZONE).isoformat()
             if site.first_slot is not None else "<a slot start from the answer above>")
    booking = json.dumps({
        "event_type": "consultation",
        "start": start,
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com"},
    })
    rooms = ", ".join(sample.ROOMS)
    lines = [
        "calpool demo: a CalDAV server with sample people and rooms, synced into SQLite,",
        "served on loopback.",
        "",
        f"  HTTP hook:     {site.url}",
        f"  API token:     {site.token}  (scopes slots, book, admin)",
        f"  CalDAV server: {site.caldav_url}  (Radicale, no login)",
        f"  Config:        {site.config_path}",
        f"  Data folder:   {site.folder}  (removed when the demo stops)",
        f"  Customer page: {site.url}/meet/consultation",
        *([f"  One-time link: {site.url}/book/{site.link_token}"] if site.link_token else []),
        "",
        f"Sample data: people alice ({sample.ZONE_NAME}, mon-fri 09:00-17:00) and bob;",
        f"rooms {rooms} in the pool {sample.POOL} (longest idle first);",
        "event types consultation (alice and a room, 30m) and panel (alice with bob and a",
        "room, 60m). Busy events fill the coming working days; calpool polls the CalDAV",
        "server every 10 seconds, so edits made there show up shortly.",
        "",
        "Try it:",
        f"  export TOKEN={site.token}",
    ]
    if site.serves("/v1/event-types"):
        lines.append(f"  curl {auth} {site.url}/v1/event-types")
    if site.serves("/v1/event-types/{key}/slots"):
        lines.append(f"  curl {auth} '{site.url}/v1/event-types/consultation/slots'")
    if site.serves("/v1/bookings"):
        lines += [
            f"  curl {auth} -H 'Content-Type: application/json' \\",
            f"       -d '{booking}' \\",
            f"       {site.url}/v1/bookings",
        ]
    lines += [
        f"  {_calpool()} --config {shlex.quote(str(site.config_path))} slots consultation",
        "",
        "Press Ctrl-C to stop.",
        "",
        machine_line(site.url, site.token),
    ]
    return "\n".join(lines)


def _calpool() -> str:
    """How to call this calpool from a shell: by name when it is on PATH's
    first choice, else by the path next to the interpreter."""
    beside = Path(sys.executable).parent / "calpool"
    return shlex.quote(str(beside)) if beside.exists() else "calpool"
