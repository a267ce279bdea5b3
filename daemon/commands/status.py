"""``calpool status [--json]``: how each calendar's sync stands, for people
and for monitoring checks.

Per calendar: the state (``ok``, ``stale``, ``failed``, ``never_synced``),
the last successful sync and its age against ``sync.stale_after``, the push
channel and its expiry, the last error; then the outbox's depth and the age
of its oldest job.  Exit 1 when any calendar is not ``ok``, so the command
works as a Nagios-style check (``calpool status || alert``).

It reads the store only: no provider is asked and no secret is read, so it
works while the daemon runs, and from a shell that lacks the daemon's
credentials.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.commands.invocation import CommandFailed, Invocation
from daemon.config.settings import Config
from engine.services.availability import first_unreadable
from engine.services.status import SiteStatus, StatusQuery
from engine.store import SchemaNotCurrent, Store


def run(invocation: Invocation) -> int:
    config = invocation.config()
    try:
        store = Store.open(config.daemon.database_url)
    except SchemaNotCurrent as exc:
        raise CommandFailed(str(exc)) from exc
    try:
        status = StatusQuery(store, list(config.calendars), stale_after=config.sync.stale_after
                             ).read(datetime.now(ZoneInfo("UTC")), channels=True, webhooks=True,
                                    processes_within=config.sync.lease_ttl)
    finally:
        store.close()
    document = status_document(config, status)
    if invocation.args.json:
        json.dump(document, invocation.out, indent=2)
        invocation.out.write("\n")
    else:
        _print_text(document, config, invocation)
    return 0 if document["ok"] else 1


def status_document(config: Config, status: SiteStatus) -> dict[str, Any]:
    now = status.now
    calendars = []
    for key in status.calendars:
        state = status.states.get(key)
        success = state.last_success_at if state is not None else None
        live = [channel for channel in status.channels.get(key, []) if channel.expires_at > now]
        channel = live[-1] if live else None  # the one that lasts longest
        calendars.append({
            "calendar": key,
            "state": status.state_of(key),
            "last_synced": _instant(success),
            "last_attempt": _instant(state.last_attempt_at if state is not None else None),
            "age_seconds": None if success is None else round((now - success).total_seconds()),
            "push_channel": None if channel is None else {
                "id": channel.id, "expires_at": _instant(channel.expires_at)},
            "last_error": state.last_error if state is not None else None,
            "last_error_at": _instant(state.last_error_at if state is not None else None),
            "unreadable": len(state.unreadable) if state is not None else 0,
            "last_unreadable": first_unreadable(state),
        })
    newest = status.newest_config
    newest_fingerprint = None if newest is None else newest.fingerprint
    return {
        "ok": not status.flagged,
        "config": {
            "fingerprint": config.fingerprint,
            "newest": newest_fingerprint,
            "newest_since": _instant(None if newest is None else newest.first_seen_at),
            "current": newest is None or newest.fingerprint == config.fingerprint,
            "processes": [{
                "holder": seen.holder, "host": seen.host, "fingerprint": seen.fingerprint,
                "current": seen.fingerprint == newest_fingerprint,
                "started_at": _instant(seen.started_at), "seen_at": _instant(seen.seen_at),
            } for seen in status.processes],
        },
        "checked_at": _instant(now),
        "stale_after_seconds": round(config.sync.stale_after.total_seconds()),
        "calendars": calendars,
        "webhooks": {name: status.webhooks.get(name, 0) for name in ("pending", "done", "failed")},
        "outbox": {
            "depth": status.outbox_depth,
            "oldest_age_seconds": None if status.outbox_oldest is None
            else round((now - status.outbox_oldest).total_seconds()),
        },
    }


def _print_text(document: dict[str, Any], config: Config, invocation: Invocation) -> None:
    zone = ZoneInfo(config.daemon.timezone)
    out = invocation.out
    width = max((len(entry["calendar"]) for entry in document["calendars"]), default=8)
    for entry in document["calendars"]:
        synced = "never synced"
        if entry["last_synced"] is not None:
            when = _local(entry["last_synced"], zone)
            synced = f"synced {when} ({_age(entry['age_seconds'])} ago)"
        channel = entry["push_channel"]
        push = "no push channel" if channel is None else (
            f"push channel until {_local(channel['expires_at'], zone)}")
        line = f"{entry['calendar']:<{width}}  {entry['state']:<12}  {synced}; {push}"
        if entry["state"] != "ok" and entry["last_error"]:
            line += f"; last error: {entry['last_error']}"
        if entry["unreadable"]:
            line += (f"; {entry['unreadable']} objects unreadable, e.g. "
                     f"{entry['last_unreadable']}")
        print(line, file=out)
    if not document["calendars"]:
        print("no calendars configured", file=out)
    _print_config(document["config"], out)
    outbox = document["outbox"]
    waiting = "" if outbox["oldest_age_seconds"] is None else (
        f", oldest waiting {_age(outbox['oldest_age_seconds'])}")
    print(f"outbox: {outbox['depth']} jobs waiting{waiting}", file=out)
    webhooks = document["webhooks"]
    if any(webhooks.values()):
        print(f"webhooks: {webhooks['pending']} waiting, {webhooks['done']} delivered, "
              f"{webhooks['failed']} given up", file=out)
    bad = [entry["calendar"] for entry in document["calendars"] if entry["state"] != "ok"]
    if bad:
        limit = _age(document["stale_after_seconds"])
        print(f"{len(bad)} calendar(s) not ok (stale after {limit}): {', '.join(bad)}",
              file=invocation.err)


def _print_config(section: dict[str, Any], out: Any) -> None:
    mine = section["fingerprint"][:12]
    if section["current"]:
        print(f"config: fingerprint {mine} (the newest)", file=out)
    else:
        print(f"config: fingerprint {mine} differs from the newest, {section['newest'][:12]} "
              f"(first run {section['newest_since']}); calendars it does not know are not "
              "dropped", file=out)
    for seen in section["processes"]:
        which = "the newest config" if seen["current"] else f"config {seen['fingerprint'][:12]}"
        print(f"process {seen['holder']}: {which}, started {seen['started_at']}", file=out)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _local(text: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(text).astimezone(zone).isoformat(timespec="seconds")


def _age(seconds: int) -> str:
    left = timedelta(seconds=max(0, seconds))
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return "".join(shown) or "0s"
