"""Checks and conversions of calendars, pools and event types: references,
roles, working hours, and the rule that ties event types to the sync window.

An entry that is declared but invalid has been reported already; references
to it are not reported again.
"""

from __future__ import annotations

from datetime import time, timedelta

from daemon.config import schema
from daemon.config.checker import Checker, key_path
from daemon.config.durations import format_duration
from daemon.config.settings import Account, CalendarSource, GoogleAccount
from daemon.config.values import KeyedValueError, parse_overrides, parse_weekly
from engine.core.model import (
    AssignmentMethod,
    Calendar,
    CalendarKind,
    EventType,
    LocalRange,
    Pool,
    ReportingCycle,
    WorkingHours,
)

# Overrides without weekly hours: available all week except on those dates.
_ALL_DAY = (LocalRange(time(0), time(0)),)


class Declared:
    """The valid entries of a named table and the keys of all declared ones."""

    def __init__(self, valid: dict[str, object], declared: set[str]) -> None:
        self.valid = valid
        self.declared = declared

    def check(self, checker: Checker, path: str, key: str, what: str) -> bool:
        """Whether ``key`` names a valid entry; a problem when it names none."""
        if key in self.valid:
            return True
        if key not in self.declared:
            checker.problem(path, f"unknown {what} {key!r}")
        return False


def calendars(
    checker: Checker, zone: str, valid_accounts: dict[str, Account], declared_accounts: set[str]
) -> tuple[dict[str, Calendar], dict[str, CalendarSource], set[str]]:
    """The valid calendars, where each lives, and the keys of all declared ones."""
    table = checker.named("calendars")
    accounts = Declared(dict(valid_accounts), declared_accounts)
    found: dict[str, Calendar] = {}
    sources: dict[str, CalendarSource] = {}
    for key, data in table.items():
        path = key_path("calendars", key)
        section = checker.validate(schema.CalendarSection.model_validate, data, path)
        if section is None:
            continue
        if accounts.check(checker, f"{path}.account", section.account, "account"):
            account = valid_accounts[section.account]
            if section.subject is not None and not isinstance(account, GoogleAccount):
                checker.problem(f"{path}.subject", f"only Google accounts act as a subject; "
                                f"{section.account!r} is a {account.provider} account")
        hours = _working_hours(checker, path, section)
        found[key] = Calendar(key=key, kind=CalendarKind(section.kind),
                              timezone=section.timezone or zone, working_hours=hours,
                              name=section.name if section.name is not None else key,
                              capacity=section.capacity)
        sources[key] = CalendarSource(calendar=key, account=section.account,
                                      external_id=section.id, subject=section.subject)
    return found, sources, set(table)


def _working_hours(
    checker: Checker, path: str, section: schema.CalendarSection
) -> WorkingHours | None:
    if section.working_hours is None and section.overrides is None:
        return None
    weekly: dict[int, tuple[LocalRange, ...]] = dict.fromkeys(range(7), _ALL_DAY)
    overrides = {}
    try:
        if section.working_hours is not None:
            weekly = parse_weekly(section.working_hours)
    except KeyedValueError as exc:
        checker.problem(key_path(path, "working_hours", exc.key), exc.sentence)
    try:
        overrides = parse_overrides(section.overrides or {})
    except KeyedValueError as exc:
        checker.problem(key_path(path, "overrides", exc.key), exc.sentence)
    return WorkingHours(weekly=weekly, overrides=overrides)


def pools(checker: Checker, zone: str, valid_calendars: dict[str, Calendar],
          declared_calendars: set[str]) -> tuple[dict[str, Pool], set[str]]:
    table = checker.named("pools")
    known = Declared(dict(valid_calendars), declared_calendars)
    found: dict[str, Pool] = {}
    for key, data in table.items():
        path = key_path("pools", key)
        section = checker.validate(schema.PoolSection.model_validate, data, path)
        if section is None:
            continue
        seen: set[str] = set()
        for index, member in enumerate(section.members):
            member_path = key_path(path, "members", index)
            if member in seen:
                checker.problem(member_path, f"{member!r} is listed twice")
            seen.add(member)
            if known.check(checker, member_path, member, "calendar"):
                kind = valid_calendars[member].kind
                if kind is not CalendarKind.ROOM:
                    checker.problem(member_path,
                                    f"{member!r} is a {kind.value}; pool members are rooms")
        found[key] = Pool(key=key, members=tuple(section.members),
                          assignment=AssignmentMethod(section.assignment),
                          reporting_cycle=ReportingCycle(section.reporting_cycle),
                          timezone=section.timezone or zone)
    return found, set(table)


def event_types(
    checker: Checker,
    valid_calendars: dict[str, Calendar],
    declared_calendars: set[str],
    valid_pools: dict[str, Pool],
    declared_pools: set[str],
    window_future: timedelta | None,
) -> dict[str, EventType]:
    """``window_future`` is ``None`` when ``[sync]`` itself is invalid."""
    table = checker.named("event_types")
    calendars_known = Declared(dict(valid_calendars), declared_calendars)
    pools_known = Declared(dict(valid_pools), declared_pools)
    found: dict[str, EventType] = {}
    for key, data in table.items():
        path = key_path("event_types", key)
        section = checker.validate(schema.EventTypeSection.model_validate, data, path)
        if section is None:
            continue
        people = [(f"{path}.owner", section.owner)]
        people += [(key_path(path, "with", i), person) for i, person in enumerate(section.with_)]
        seen: set[str] = set()
        for person_path, person in people:
            if person in seen:
                checker.problem(person_path, f"{person!r} is already a participant")
            seen.add(person)
            if calendars_known.check(checker, person_path, person, "calendar"):
                kind = valid_calendars[person].kind
                if kind is not CalendarKind.PERSON:
                    checker.problem(person_path, f"{person!r} is a {kind.value}; the owner and "
                                    "the people in 'with' are persons (rooms come from pools)")
        _check_pools(checker, path, section.pools, valid_pools, pools_known)
        if window_future is not None and section.horizon > window_future:
            checker.problem(f"{path}.horizon", f"{format_duration(section.horizon)} reaches past "
                            f"sync.window_future ({format_duration(window_future)}), "
                            "so slots at its end would be offered from data never synced")
        found[key] = EventType(
            key=key, title=section.title, description=section.description,
            duration=section.duration, step=section.step or section.duration,
            owner=section.owner, with_=tuple(section.with_), pools=tuple(section.pools),
            buffer_before=section.buffer_before, buffer_after=section.buffer_after,
            min_notice=section.min_notice, horizon=section.horizon,
            max_per_day=section.max_per_day, live_recheck=section.live_recheck,
            change_notice=section.change_notice, public=section.public,
            notify_attendee=section.notify_attendee)
    return found


def _check_pools(checker: Checker, path: str, names: list[str], valid_pools: dict[str, Pool],
                 known: Declared) -> None:
    """Every pool exists, none twice, and no room is in two of them: one room
    cannot be assigned for two pools of the same booking."""
    owner_of_room: dict[str, str] = {}
    seen: set[str] = set()
    for index, name in enumerate(names):
        pool_path = key_path(path, "pools", index)
        if name in seen:
            checker.problem(pool_path, f"{name!r} is listed twice")
            continue
        seen.add(name)
        if not known.check(checker, pool_path, name, "pool"):
            continue
        shared = [room for room in valid_pools[name].members if room in owner_of_room]
        if shared:
            other = owner_of_room[shared[0]]
            checker.problem(pool_path, f"pool {name!r} shares {', '.join(map(repr, shared))} "
                            f"with pool {other!r}; the pools of one event type are disjoint")
        for room in valid_pools[name].members:
            owner_of_room.setdefault(room, name)
