"""Change notifications: subscriptions on a mailbox's events, the validation handshake, deliveries.

``POST /subscriptions`` first validates each endpoint: Graph POSTs to
``notificationUrl?validationToken=…`` (and to ``lifecycleNotificationUrl``) and
expects 200 ``text/plain`` with the decoded token within 10 s, else the
subscription is not created (400). Outlook event subscriptions expire at most
10,080 minutes ahead; ``clientState`` is at most 128 characters; ``PATCH``
renews, ``DELETE`` ends, ``POST …/reauthorize`` reauthorizes.
Notifications are POSTed as ``{"value": [{subscriptionId, changeType, resource,
resourceData, clientState, tenantId, subscriptionExpirationDateTime}]}``;
lifecycle events (``reauthorizationRequired``, ``subscriptionRemoved``,
``missed``) go to the lifecycle URL as ``{"value": [{…, "lifecycleEvent"}]}``.
https://learn.microsoft.com/en-us/graph/webhooks
https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
https://learn.microsoft.com/en-us/graph/webhooks-lifecycle
https://learn.microsoft.com/en-us/graph/api/resources/subscription
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.graph import times
from tests.fakes.graph.errors import graph_error

MAX_EVENT_SUBSCRIPTION = timedelta(minutes=10080)
MAX_CLIENT_STATE = 128
VALIDATION_TIMEOUT = 10.0
_EVENTS_RESOURCE = re.compile(r"^/?users/([^/]+)/(?:calendar/)?events$", re.IGNORECASE)
_CHANGE_TYPES = {"created", "updated", "deleted"}


class Subscriptions:
    """The tenant's subscriptions and the fake's outgoing POSTs (validation and notifications)."""

    def __init__(
        self, *, clock: Callable[[], datetime], tenant_id: str, has_mailbox: Callable[[str], bool]
    ) -> None:
        self._clock = clock
        self._tenant_id = tenant_id
        self._has_mailbox = has_mailbox
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.deliveries: list[tuple[str, dict[str, str], bytes]] = []
        self.delivery_statuses: list[int | None] = []  # the receiver's answer to each delivery
        self.receiver_verify: str | bool = True  # CA file (or False) for the receiver's TLS
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # ---- outgoing -----------------------------------------------------------------------

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> requests.Response | None:
        with self._lock:
            self.deliveries.append((url, headers, body))
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        session.verify = self.receiver_verify
        try:
            answer: requests.Response | None = session.post(
                url, data=body, headers=headers, timeout=VALIDATION_TIMEOUT
            )
        except requests.RequestException:
            answer = None
        with self._lock:
            self.delivery_statuses.append(answer.status_code if answer is not None else None)
        return answer

    def _validate(self, url: str) -> bool:
        """The handshake: 200, text/plain, the token echoed."""
        token = (
            f"Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        answer = self._post(
            f"{url}{'&' if '?' in url else '?'}validationToken={quote(token)}",
            b"",
            {"Content-Type": "text/plain; charset=utf-8"},
        )
        return (
            answer is not None
            and answer.status_code == 200
            and answer.headers.get("content-type", "").startswith("text/plain")
            and answer.text == token
        )

    def start(self) -> None:
        self._worker = threading.Thread(
            target=self._deliver_loop, name="graph-fake-notify", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=15)

    def _deliver_loop(self) -> None:
        while (job := self._queue.get()) is not None:
            url, payload = job
            self._post(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def on_change(self, user: str, event_id: str, change_type: str) -> None:
        """Calendars listener: queue a notification for each live subscription that covers it."""
        now = self._clock()
        for subscription_id, sub in list(self.subscriptions.items()):
            match = _EVENTS_RESOURCE.match(sub["resource"])
            if (
                sub["deleted"]
                or match is None
                or match.group(1).lower() != user.lower()
                or change_type not in sub["changeType"].split(",")
                or times.parse_query_instant(sub["expirationDateTime"]) <= now
            ):
                continue
            resource = f"Users/{user}/Events/{event_id}"
            self._queue.put(
                (
                    sub["notificationUrl"],
                    {
                        "value": [
                            {
                                "subscriptionId": subscription_id,
                                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                                "changeType": change_type,
                                "resource": resource,
                                "resourceData": {
                                    "@odata.type": "#Microsoft.Graph.Event",
                                    "@odata.id": resource,
                                    "id": event_id,
                                },
                                "clientState": sub["clientState"],
                                "tenantId": self._tenant_id,
                            }
                        ]
                    },
                )
            )

    def send_lifecycle(self, subscription_id: str, lifecycle_event: str) -> None:
        """Queue a lifecycle notification; ``subscriptionRemoved`` also ends the subscription."""
        sub = self.subscriptions[subscription_id]
        if not sub.get("lifecycleNotificationUrl"):
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        if lifecycle_event == "subscriptionRemoved":
            sub["deleted"] = True
        self._queue.put(
            (
                sub["lifecycleNotificationUrl"],
                {
                    "value": [
                        {
                            "subscriptionId": subscription_id,
                            "subscriptionExpirationDateTime": sub["expirationDateTime"],
                            "tenantId": self._tenant_id,
                            "clientState": sub["clientState"],
                            "lifecycleEvent": lifecycle_event,
                        }
                    ]
                },
            )
        )

    # ---- the routes ---------------------------------------------------------------------

    def _check_expiration(self, text: Any, request: Request) -> Response | None:
        try:
            expiry = times.parse_query_instant(str(text))
        except ValueError:
            return graph_error(
                400,
                "InvalidRequest",
                "expirationDateTime is not a valid DateTimeOffset.",
                request_headers=request.headers,
            )
        if expiry <= self._clock():
            return graph_error(
                400,
                "InvalidRequest",
                "Subscription expiration must be in the future.",
                request_headers=request.headers,
            )
        if expiry > self._clock() + MAX_EVENT_SUBSCRIPTION:
            return graph_error(
                400,
                "InvalidRequest",
                "Subscription expiration can only be 10080 minutes in the future.",
                request_headers=request.headers,
            )
        return None

    async def create(self, request: Request, params: dict[str, str]) -> Response:
        """``POST /subscriptions`` (validates the endpoints before the subscription exists).

        https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
        https://learn.microsoft.com/en-us/graph/webhooks#notification-endpoint-validation
        """
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return graph_error(
                400,
                "BadRequest",
                "Unable to read JSON request payload.",
                request_headers=request.headers,
            )
        match = _EVENTS_RESOURCE.match(str(body.get("resource", "")))
        change_types = set(str(body.get("changeType", "")).split(","))
        if match is None or not change_types <= _CHANGE_TYPES:
            return graph_error(
                400,
                "InvalidRequest",
                "The fake subscribes to /users/{id}/events with created, updated, deleted only.",
                request_headers=request.headers,
            )
        if not self._has_mailbox(match.group(1)):
            return graph_error(
                404,
                "ErrorInvalidUser",
                f"The requested user '{match.group(1)}' is invalid.",
                request_headers=request.headers,
            )
        url = str(body.get("notificationUrl", ""))
        if not url.startswith("https://"):
            return graph_error(
                400,
                "InvalidRequest",
                "The notification URL must use https.",
                request_headers=request.headers,
            )
        if len(str(body.get("clientState") or "")) > MAX_CLIENT_STATE:
            return graph_error(
                400,
                "InvalidRequest",
                "clientState is limited to 128 characters.",
                request_headers=request.headers,
            )
        refused = self._check_expiration(body.get("expirationDateTime"), request)
        if refused:
            return refused
        lifecycle = body.get("lifecycleNotificationUrl")
        for endpoint in [url, *([lifecycle] if lifecycle else [])]:
            if not await asyncio.to_thread(self._validate, str(endpoint)):
                return graph_error(
                    400,
                    "ValidationError",
                    "Subscription validation request "
                    "failed. Notification endpoint must respond with 200 OK to "
                    "validation request.",
                    request_headers=request.headers,
                )
        subscription_id = str(uuid.uuid4())
        sub = {
            "resource": body["resource"],
            "changeType": body["changeType"],
            "notificationUrl": url,
            "lifecycleNotificationUrl": lifecycle,
            "clientState": body.get("clientState"),
            "expirationDateTime": times.format_offset(
                times.parse_query_instant(str(body["expirationDateTime"]))
            ),
            "deleted": False,
        }
        self.subscriptions[subscription_id] = sub
        return JSONResponse(self._shown(subscription_id), status_code=201)

    def _shown(self, subscription_id: str) -> dict[str, Any]:
        sub = self.subscriptions[subscription_id]
        return {
            "id": subscription_id,
            **{k: v for k, v in sub.items() if k != "deleted"},
            "applicationId": "",
            "creatorId": secrets.token_hex(4),
            "latestSupportedTlsVersion": "v1_2",
        }

    def _live(self, request: Request, subscription_id: str) -> Response | None:
        sub = self.subscriptions.get(subscription_id)
        if sub is None or sub["deleted"]:
            return graph_error(
                404,
                "ResourceNotFound",
                "The object was not found.",
                request_headers=request.headers,
            )
        return None

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        """``GET /subscriptions/{id}``. https://learn.microsoft.com/en-us/graph/api/subscription-get"""
        return self._live(request, params["id"]) or JSONResponse(self._shown(params["id"]))

    async def renew(self, request: Request, params: dict[str, str]) -> Response:
        """``PATCH /subscriptions/{id}`` with a new ``expirationDateTime``.

        https://learn.microsoft.com/en-us/graph/api/subscription-update
        """
        missing = self._live(request, params["id"])
        if missing:
            return missing
        body = json.loads(await request.body() or b"{}")
        refused = self._check_expiration(body.get("expirationDateTime"), request)
        if refused:
            return refused
        self.subscriptions[params["id"]]["expirationDateTime"] = times.format_offset(
            times.parse_query_instant(str(body["expirationDateTime"]))
        )
        return JSONResponse(self._shown(params["id"]))

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        """``DELETE /subscriptions/{id}``: 204. https://learn.microsoft.com/en-us/graph/api/subscription-delete"""
        missing = self._live(request, params["id"])
        if missing:
            return missing
        self.subscriptions[params["id"]]["deleted"] = True
        return Response(status_code=204)

    async def reauthorize(self, request: Request, params: dict[str, str]) -> Response:
        """``POST /subscriptions/{id}/reauthorize``: 200 (after ``reauthorizationRequired``).

        https://learn.microsoft.com/en-us/graph/api/subscription-reauthorize
        """
        return self._live(request, params["id"]) or Response(status_code=200)

    def routes(self) -> list[tuple[str, re.Pattern[str], Any]]:
        one = r"/v1\.0/subscriptions/(?P<id>[^/]+)"
        return [
            ("POST", re.compile(r"/v1\.0/subscriptions$", re.I), self.create),
            ("GET", re.compile(one + "$", re.I), self.get),
            ("PATCH", re.compile(one + "$", re.I), self.renew),
            ("DELETE", re.compile(one + "$", re.I), self.delete),
            ("POST", re.compile(one + "/reauthorize$", re.I), self.reauthorize),
        ]
