"""The memory provider's webhook deliveries: a small JSON body of its own.

Like Graph (one POST may carry several notifications) and unlike Google (one
per POST, empty body, state in headers), a delivery is one JSON document::

    POST <address>
    Content-Type: application/json

    {"calpool-memory-push": 1,
     "notifications": [{"channel_id": "...", "resource_id": "...",
                        "token": "...", "kind": "changed", "message": 3}]}

``kind`` is a :class:`~engine.ports.NotificationKind` value: ``sync`` when
the channel opens (Google's first delivery), ``changed`` after a change,
``missed`` / ``removed`` / ``reauthorize`` as the provider decides.
``token`` echoes the channel's token (Google's channel token, Graph's
clientState) for the receiver to check; ``message`` numbers the
deliveries of one channel (Google's ``X-Goog-Message-Number``).

Like Graph, the provider may first check the address: a POST with
``?validationToken=<t>`` and no body, to be answered 200 ``text/plain``
with ``<t>`` (:func:`parse` returns it as a ``handshake``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.errors import PermanentError
from engine.ports import HookReply, Notification, NotificationKind

MARKER = "calpool-memory-push"
VERSION = 1
CONTENT_TYPE = "application/json"
VALIDATION = "validationToken"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One POST the provider made to a channel's address."""

    address: str
    headers: Mapping[str, str]
    body: bytes


def encode(notifications: Sequence[tuple[Notification, int]]) -> tuple[dict[str, str], bytes]:
    """Headers and body of one delivery of ``(notification, message number)``."""
    items = [
        {
            "channel_id": n.channel_id,
            "resource_id": n.resource_id,
            "token": n.token,
            "kind": n.kind.value,
            "message": number,
        }
        for n, number in notifications
    ]
    body = json.dumps({MARKER: VERSION, "notifications": items}, separators=(",", ":"))
    return {"Content-Type": CONTENT_TYPE}, body.encode()


def parse(
    headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
) -> tuple[Notification, ...]:
    """The notifications of one delivery; :class:`PermanentError` for
    anything that is not one of this provider's (another provider's
    webhook, a truncated body, an unknown kind)."""
    token = (query or {}).get(VALIDATION)
    if token is not None:
        reply = HookReply(200, "text/plain", token)
        return (Notification("", "", "", NotificationKind.HANDSHAKE, reply=reply),)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise PermanentError(f"not a memory push delivery: content type {content_type!r}")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentError("not a memory push delivery: the body is not JSON") from exc
    if not isinstance(document, dict) or document.get(MARKER) != VERSION:
        raise PermanentError("not a memory push delivery: no marker of this provider")
    items = document.get("notifications")
    if not isinstance(items, list) or not items:
        raise PermanentError("memory push delivery without notifications")
    return tuple(_notification(item) for item in items)


def _notification(item: object) -> Notification:
    if not isinstance(item, dict):
        raise PermanentError("memory push notification is not an object")
    fields = [item.get(name) for name in ("channel_id", "resource_id", "token", "kind")]
    if not all(isinstance(value, str) for value in fields):
        raise PermanentError("memory push notification lacks one of its fields")
    channel_id, resource_id, token, kind = (str(value) for value in fields)
    try:
        parsed_kind = NotificationKind(kind)
    except ValueError as exc:
        raise PermanentError(f"memory push notification of unknown kind {kind!r}") from exc
    if parsed_kind is NotificationKind.HANDSHAKE:
        raise PermanentError("a memory push handshake comes as ?validationToken=, not in a body")
    number = item.get("message")
    message = str(number) if isinstance(number, int) and not isinstance(number, bool) else ""
    return Notification(channel_id, resource_id, token, parsed_kind, message)
