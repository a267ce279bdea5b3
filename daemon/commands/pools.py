"""``calpool pools report POOL``: per room of a pool, in one reporting
cycle, what it received and lost and how busy it was; a table, or the
report document with ``--json``."""

from __future__ import annotations

import json

from daemon.commands.app import open_app
from daemon.commands.invocation import CommandFailed, Invocation
from daemon.documents import pool_report_document
from daemon.inputs import parse_cycle


def report(invocation: Invocation) -> int:
    args = invocation.args
    config = invocation.config()
    if args.pool not in config.pools:
        known = ", ".join(config.pools) or "none"
        raise CommandFailed(f"unknown pool {args.pool!r} (known: {known})", 2)
    try:
        which = parse_cycle(args.cycle)
    except ValueError as exc:
        raise CommandFailed(f"--cycle: {exc}", 2) from exc
    app = open_app(invocation)
    try:
        document = pool_report_document(app.pools.report(args.pool, which, app.clock()))
    finally:
        app.close()
    if args.json:
        json.dump(document, invocation.out, indent=2)
        invocation.out.write("\n")
        return 0
    cycle = document["cycle"]
    print(f"pool {document['pool']} ({document['assignment']}), {cycle['unit']} "
          f"{cycle['start']} - {cycle['end']}", file=invocation.out)
    header = ("room", "received", "removed", "away", "to", "busy", "last assigned")
    rows = [(m["room"], str(m["received"]), str(m["removed"]), str(m["reassigned_away"]),
             str(m["reassigned_to"]), f"{m['busy_ratio']:.0%}", m["last_assigned_at"] or "never")
            for m in document["members"]]
    rows.append(("total", str(document["total"]["received"]), str(document["total"]["removed"]),
                 "", "", "", ""))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip(), file=invocation.out)
    return 0
