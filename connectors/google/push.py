"""Google push: watch channels on a calendar's events and the deliveries
they make (https://developers.google.com/workspace/calendar/api/guides/push).

``events.watch`` opens a channel ``{id, type: "web_hook", address, token,
params: {ttl}}``; Google answers its ``resourceId`` and ``expiration``
(milliseconds since the epoch; it may shorten the ttl).  There is no
renewal call: the channel service opens a new channel and stops the old
(``channels.stop {id, resourceId}``).  A delivery is a POST with an empty
body whose ``X-Goog-*`` headers say everything: ``X-Goog-Resource-State``
``sync`` (the channel is up) or ``exists`` / ``not_exists`` (something
changed: run the incremental sync).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from googleapiclient.errors import HttpError

from engine.errors import PermanentError
from engine.ports import Notification, NotificationKind, PushChannel

_KINDS = {
    "sync": NotificationKind.SYNC,
    "exists": NotificationKind.CHANGED,
    "not_exists": NotificationKind.CHANGED,
}


def start_channel(service: Any, calendar_id: str, *, address: str, token: str,
                  ttl_seconds: int) -> PushChannel:
    channel_id = str(uuid.uuid4())  # ≤ 64 characters, unique per channel
    answer = service.events().watch(calendarId=calendar_id, body={
        "id": channel_id, "type": "web_hook", "address": address, "token": token,
        "params": {"ttl": str(int(ttl_seconds))},
    }).execute()
    expiration = answer.get("expiration")
    if not answer.get("resourceId") or not expiration:
        raise PermanentError("Google's watch answer named no resourceId or expiration",
                             calendar=calendar_id)
    return PushChannel(
        id=str(answer.get("id", channel_id)),
        calendar_id=calendar_id,
        resource_id=str(answer["resourceId"]),
        expires_at=datetime.fromtimestamp(int(expiration) / 1000, UTC),
        token=token,
    )


def stop_channel(service: Any, channel: PushChannel) -> None:
    try:
        service.channels().stop(body={"id": channel.id, "resourceId": channel.resource_id}
                                ).execute()
    except HttpError as exc:
        if exc.resp.status not in (404, 410):  # already gone
            raise


def parse(headers: Mapping[str, str]) -> tuple[Notification, ...]:
    """The one notification of a delivery, from its headers."""
    lower = {name.lower(): value for name, value in headers.items()}
    channel_id = lower.get("x-goog-channel-id", "")
    resource_id = lower.get("x-goog-resource-id", "")
    state = lower.get("x-goog-resource-state", "")
    if not channel_id or not resource_id or state not in _KINDS:
        raise PermanentError("not a Google Calendar push delivery "
                             "(X-Goog-Channel-Id / X-Goog-Resource-Id / X-Goog-Resource-State)")
    return (Notification(
        channel_id=channel_id,
        resource_id=resource_id,
        token=lower.get("x-goog-channel-token", ""),
        kind=_KINDS[state],
        message=lower.get("x-goog-message-number", ""),
    ),)
