"""``POST /hooks/{provider}``: provider push notifications, without a bearer
token: each delivery is authenticated by its channel's token (Google's
channel token, Graph's clientState), which the engine's push service
checks (``engine.services.push``).  The route only maps its answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from daemon.http.context import CalpoolApp
from daemon.http.problems import ProblemType, problem, problem_responses, register_problem_type
from engine.services.push import PushOutcome

router = APIRouter(tags=["push"])

UNKNOWN_CHANNEL = register_problem_type(ProblemType(
    "/problems/unknown-channel", 404, "Unknown push channel",
    "the delivery names no push channel of this provider that calpool opened; nothing is "
    "triggered"))
WRONG_CHANNEL_TOKEN = register_problem_type(ProblemType(
    "/problems/wrong-channel-token", 401, "Wrong channel token",
    "the delivery's channel token (Google channel token, Graph clientState) or resource is "
    "not the channel's; nothing is triggered"))
NOT_A_NOTIFICATION = register_problem_type(ProblemType(
    "/problems/not-a-notification", 400, "Not a push notification",
    "the body and headers are not a push delivery of this provider"))

_REFUSALS = {
    PushOutcome.UNKNOWN_CHANNEL: UNKNOWN_CHANNEL.uri,
    PushOutcome.WRONG_TOKEN: WRONG_CHANNEL_TOKEN.uri,
    PushOutcome.NOT_A_DELIVERY: NOT_A_NOTIFICATION.uri,
}


class PushReceipt(BaseModel):
    """What a checked delivery did: ``accepted`` notifications (each marks
    its calendar for a sync where it says something changed) and
    ``duplicates`` (redelivered messages, ignored)."""

    accepted: int
    duplicates: int


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/hooks/{provider}",
    summary="A provider's push notification (Google watch channel, Graph subscription)",
    status_code=202,
    response_model=PushReceipt,
    responses={
        200: {"description": "a handshake (Graph's `validationToken`): the token echoed",
              "content": {"text/plain": {"schema": {"type": "string"}}}},
        **problem_responses(UNKNOWN_CHANNEL.uri, WRONG_CHANNEL_TOKEN.uri,
                            NOT_A_NOTIFICATION.uri, "/problems/payload-too-large",
                            "/problems/validation"),
    },
)
def receive_push(
    app: CalpoolApp,
    request: Request,
    provider: str,
    body: Annotated[bytes, Depends(_raw_body)],
) -> Any:
    """No bearer token: the channel's own token authenticates a delivery.
    202 once checked; the calendar's sync follows at once in this process
    (its sync-requested job is woken), or in the process that holds the
    calendar's lease after its round; a redelivered message is accepted
    and triggers nothing more."""
    answer = app.push.receive(provider, dict(request.headers.items()), body,
                              dict(request.query_params.items()))
    if answer.outcome is PushOutcome.HANDSHAKE and answer.reply is not None:
        return Response(answer.reply.body, status_code=answer.reply.status,
                        media_type=answer.reply.content_type)
    refusal = _REFUSALS.get(answer.outcome)
    if refusal is not None:
        raise problem(refusal, answer.detail)
    if answer.marked:
        app.marked()
    receipt = PushReceipt(accepted=answer.accepted, duplicates=answer.duplicates)
    return JSONResponse(receipt.model_dump(), status_code=202)
