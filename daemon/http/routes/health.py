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
        status = app.status.read(app.clock())
    except (StoreError, SQLAlchemyError, OSError) as exc:
        log.warning("readiness: the database does not answer: %s", exc)
        raise problem(
            "/problems/not-ready", "the database does not answer",
            database="unreachable", waiting_for=list(app.config.calendars),
        ) from None
    waiting = status.never_tried
    if waiting:
        raise problem(
            "/problems/not-ready",
            f"{len(waiting)} of {len(status.calendars)} calendars have no sync attempt yet: "
            + ", ".join(waiting),
            database="ok", waiting_for=waiting,
        )
    # Every calendar was tried, so one that never succeeded failed.
    failed = [entry.calendar for entry in status.flagged
              if entry.reason in ("failed", "never_synced")]
    stale = [entry.calendar for entry in status.flagged if entry.reason == "stale"]
    return ReadinessDocument(
        status="ready",
        failed=[_sync_document(status.states[key]) for key in failed],
        stale=[_sync_document(status.states[key]) for key in stale],
    )


def _sync_document(state: SyncState) -> CalendarSyncDocument:
    return CalendarSyncDocument(
        calendar=state.calendar,
        last_synced=state.last_success_at,
        last_attempt=state.last_attempt_at,
    )
