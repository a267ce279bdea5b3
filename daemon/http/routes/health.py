"""``GET /healthz`` and ``GET /readyz``: liveness and readiness, without a token.

Readiness means the database answers and every configured calendar has at
least one recorded sync attempt, so a load balancer sends traffic only to
a daemon whose answers rest on data.  Failed and stale calendars do not
make it unready (the slot answers flag them), but the body lists them.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from daemon.http.context import CalpoolApp
from daemon.http.problems import problem, problem_responses
from daemon.http.schemas import CalendarSyncDocument, HealthDocument, ReadinessDocument
from daemon.wiring import App
from engine.services.availability import staleness
from engine.store import StoreError, SyncState

log = logging.getLogger("calpool.http")

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process runs")
def healthz() -> HealthDocument:
    return HealthDocument(status="ok")


@router.get(
    "/readyz",
    summary="The database answers and every calendar has been tried",
    responses=problem_responses("/problems/not-ready"),
)
def readyz(app: CalpoolApp) -> ReadinessDocument:
    """200 with the failed and stale calendars; 503 ``/problems/not-ready``
    (with ``database``: ``ok`` or ``unreachable`` and ``waiting_for``: the
    calendars never tried yet) otherwise."""
    try:
        with app.store.reader() as uow:
            states = {state.calendar: state for state in uow.calendars.sync_states()}
    except (StoreError, SQLAlchemyError, OSError) as exc:
        log.warning("readiness: the database does not answer: %s", exc)
        raise problem(
            "/problems/not-ready", "the database does not answer",
            database="unreachable", waiting_for=list(app.config.calendars),
        ) from None
    keys = list(app.config.calendars)
    waiting = [key for key in keys if key not in states or states[key].last_attempt_at is None]
    if waiting:
        raise problem(
            "/problems/not-ready",
            f"{len(waiting)} of {len(keys)} calendars have no sync attempt yet: "
            + ", ".join(waiting),
            database="ok", waiting_for=waiting,
        )
    return _ready(app, states)


def _ready(app: App, states: dict[str, SyncState]) -> ReadinessDocument:
    flagged = staleness(states, list(app.config.calendars), now=app.clock(),
                        stale_after=app.config.sync.stale_after)
    # Every calendar was tried, so one that never succeeded failed.
    failed = [entry.calendar for entry in flagged if entry.reason in ("failed", "never_synced")]
    stale = [entry.calendar for entry in flagged if entry.reason == "stale"]
    return ReadinessDocument(
        status="ready",
        failed=[_sync_document(states[key]) for key in failed],
        stale=[_sync_document(states[key]) for key in stale],
    )


def _sync_document(state: SyncState) -> CalendarSyncDocument:
    return CalendarSyncDocument(
        calendar=state.calendar,
        last_synced=state.last_success_at,
        last_attempt=state.last_attempt_at,
    )
