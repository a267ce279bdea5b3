"""Graph change notifications: subscriptions on a mailbox's events, and
the deliveries to calpool's ``/hooks/microsoft``.

A subscription (``POST /subscriptions``) watches ``/users/{id}/events``
for ``created,updated,deleted``, with calpool's channel token as
``clientState`` and the same address for notifications and lifecycle
events.  Graph checks the address before the subscription exists: it
POSTs ``?validationToken=…`` there and wants 200 ``text/plain`` with the
token back (:func:`parse` answers it as a ``HANDSHAKE``).  Outlook event
subscriptions last at most 10,080 minutes.
https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
https://learn.microsoft.com/en-us/graph/webhooks
https://learn.microsoft.com/en-us/graph/webhooks-lifecycle

A delivery is ``{"value": [...]}``: change notifications (``changeType``,
``resourceData``) and lifecycle events (``lifecycleEvent``:
``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``).  Each
names its subscription and echoes ``clientState``, which the engine checks
in constant time.  A change's ``message`` (for de-duplication of
redeliveries) is its change type, item id and the item's etag where Graph
sends one; without an etag two updates of one item could not be told
apart, so none is given and both are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.microsoft import times
from connectors.microsoft.graph import GraphSession, mailbox_path
from engine.errors import PermanentError
from engine.ports import CalendarRef, HookReply, Notification, NotificationKind, PushChannel

MAX_LIFETIME = timedelta(minutes=10080)
_MARGIN = timedelta(minutes=1)  # asked for a little less: our clock and Graph's differ
VALIDATION = "validationToken"
_LIFECYCLE = {
    "reauthorizationrequired": NotificationKind.REAUTHORIZE,
    "subscriptionremoved": NotificationKind.REMOVED,
    "missed": NotificationKind.MISSED,
}


def _channel(answer: Mapping[str, Any], *, calendar_id: str, token: str) -> PushChannel:
    try:
        expires_at = times.offset_instant(answer.get("expirationDateTime"))
    except times.UnreadableTime as exc:
        raise PermanentError(f"subscription answered without a usable expiry: {exc}") from exc
    return PushChannel(id=str(answer["id"]), calendar_id=calendar_id, resource_id="",
                       expires_at=expires_at, token=token)


def _expiry(ttl_seconds: int) -> str:
    lifetime = min(timedelta(seconds=max(1, ttl_seconds)), MAX_LIFETIME - _MARGIN)
    return times.query_instant(datetime.now(UTC) + lifetime)


def start(graph: GraphSession, calendar: CalendarRef, *, address: str, token: str,
          ttl_seconds: int) -> PushChannel:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": address,
        "lifecycleNotificationUrl": address,
        "resource": mailbox_path(calendar.id).lstrip("/") + "/events",
        "expirationDateTime": _expiry(ttl_seconds),
        "clientState": token,
    }
    answer = graph.json("POST", "/subscriptions", json=body)
    return _channel(answer, calendar_id=calendar.id, token=token)


def renew(graph: GraphSession, channel: PushChannel, *, ttl_seconds: int) -> PushChannel:
    answer = graph.json("PATCH", f"/subscriptions/{channel.id}",
                        json={"expirationDateTime": _expiry(ttl_seconds)})
    renewed = _channel(answer, calendar_id=channel.calendar_id, token=channel.token)
    return PushChannel(id=renewed.id, calendar_id=channel.calendar_id,
                       resource_id=channel.resource_id, expires_at=renewed.expires_at,
                       token=channel.token, token_sha256=channel.token_sha256,
                       calendar=channel.calendar, created_at=channel.created_at)


def stop(graph: GraphSession, channel: PushChannel) -> None:
    graph.send("DELETE", f"/subscriptions/{channel.id}", accept=(404,))


def parse(headers: Mapping[str, str], body: bytes,
          query: Mapping[str, str] | None = None) -> tuple[Notification, ...]:
    """The notifications of one delivery; :class:`PermanentError` for
    anything Graph would not send."""
    token = (query or {}).get(VALIDATION)
    if token is not None:
        reply = HookReply(200, "text/plain", token)
        return (Notification("", "", "", NotificationKind.HANDSHAKE, reply=reply),)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise PermanentError(f"not a Graph notification: content type {content_type!r}")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentError("not a Graph notification: the body is not JSON") from exc
    items = document.get("value") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise PermanentError("not a Graph notification: no value list")
    return tuple(_notification(item) for item in items)


def _notification(item: object) -> Notification:
    if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
        raise PermanentError("a Graph notification without its subscriptionId")
    subscription, token = str(item["subscriptionId"]), str(item.get("clientState") or "")
    lifecycle = item.get("lifecycleEvent")
    if lifecycle is not None:
        kind = _LIFECYCLE.get(str(lifecycle).lower())
        if kind is None:
            raise PermanentError(f"a Graph lifecycle event of unknown kind {lifecycle!r}")
        return Notification(subscription, "", token, kind)
    change = item.get("changeType")
    if not isinstance(change, str) or not change:
        raise PermanentError("a Graph notification without changeType or lifecycleEvent")
    found = item.get("resourceData")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    etag = str(data.get("@odata.etag") or "")
    message = f"{change}:{data.get('id', '')}:{etag}" if etag else ""
    return Notification(subscription, "", token, NotificationKind.CHANGED, message)
