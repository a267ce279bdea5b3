"""``GET /v1/pools`` (scope ``slots``) and ``GET /v1/pools/{key}/report``
(scope ``admin``): the pools, and per reporting cycle what each room
received, lost and how busy it was."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from daemon.documents import pool_report_document, pools_document
from daemon.http.auth import Client, require_scope
from daemon.http.context import CalpoolApp
from daemon.http.problems import (
    ProblemType,
    invalid,
    problem,
    problem_responses,
    register_problem_type,
)
from daemon.http.schemas import PoolReportDocument, PoolsDocument
from daemon.inputs import parse_cycle
from engine.services.pools import UnknownPool

router = APIRouter(prefix="/v1/pools", tags=["pools"])

SlotsClient = Annotated[Client, Depends(require_scope("slots"))]
AdminClient = Annotated[Client, Depends(require_scope("admin"))]
AUTH_PROBLEMS = ("/problems/unauthorized", "/problems/forbidden")
UNKNOWN_POOL = register_problem_type(ProblemType(
    "/problems/unknown-pool", 404, "Unknown pool", "no pool with this key is configured"))


@router.get("", summary="The pools with their members, assignment method and reporting cycle",
            response_model=PoolsDocument, responses=problem_responses(*AUTH_PROBLEMS))
def list_pools(app: CalpoolApp, _client: SlotsClient) -> Any:
    return pools_document(app.config.pools, app.config.calendars)


@router.get(
    "/{key}/report",
    summary="Per room of the pool, in one reporting cycle: bookings received and removed, "
            "swaps, last assignment, busy share",
    response_model=PoolReportDocument,
    responses=problem_responses(*AUTH_PROBLEMS, UNKNOWN_POOL.uri, "/problems/validation",
                                "/problems/database-unavailable"),
)
def pool_report(
    app: CalpoolApp,
    _client: AdminClient,
    key: str,
    cycle: Annotated[str, Query(
        description="current, previous, or an ISO date in the cycle wanted (the pool's zone)",
        max_length=32)] = "current",
) -> Any:
    try:
        which = parse_cycle(cycle)
    except ValueError as exc:
        raise invalid([{"in": "query", "name": "cycle", "detail": str(exc)}]) from None
    try:
        report = app.pools.report(key, which, app.clock())
    except UnknownPool as exc:
        raise problem(UNKNOWN_POOL.uri, str(exc), pool=key) from None
    return pool_report_document(report)
