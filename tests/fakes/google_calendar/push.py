"""Push notifications: ``events.watch`` channels, ``channels.stop``, and the fake's webhook POSTs.

``POST …/calendars/{calendarId}/events/watch`` with ``{id, type: "web_hook",
address (https), token?, params: {ttl}}`` answers the channel ``{kind:
"api#channel", id, resourceId, resourceUri, token, expiration}`` (milliseconds
since the epoch, as a string). Google then POSTs an empty body to the address:
first ``X-Goog-Resource-State: sync``, then ``exists`` after each change of the
watched calendar, with ``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``,
``X-Goog-Channel-Expiration``, ``X-Goog-Resource-ID``, ``X-Goog-Resource-URI`` and
``X-Goog-Message-Number``. ``POST /channels/stop {id, resourceId}`` ends a channel
(204). A channel id must be unique (400 ``channelIdNotUnique``); an http address is
refused (400 ``push.webhookUrlNotHttps``) unless the fake allows it for tests.
https://developers.google.com/calendar/api/guides/push
https://developers.google.com/calendar/api/v3/reference/events/watch
https://developers.google.com/calendar/api/v3/reference/channels/stop
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.google_calendar.errors import google_error

DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=30)  # the fake's cap; Google documents only that it may shorten the ttl
MAX_CHANNEL_ID = 64
DELIVERY_TIMEOUT = 10.0


class Channels:
    """The open channels and the POSTs the fake made to their addresses."""

    def __init__(self, *, clock: Callable[[], datetime], api_url: Callable[[], str]) -> None:
        self._clock = clock
        self._api_url = api_url
        self.channels: dict[str, dict[str, Any]] = {}
        self.deliveries: list[tuple[str, dict[str, str], bytes]] = []
        self.delivery_statuses: list[int | None] = []
        self.allow_http = False
        self.max_ttl = MAX_TTL
        self.receiver_verify: str | bool = True
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._worker = threading.Thread(target=self._loop, name="google-fake-push", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=15)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            self._deliver(*job)

    # ---- deliveries ----------------------------------------------------------------------

    def _live(self, channel: dict[str, Any]) -> bool:
        return not channel["stopped"] and channel["expiration"] > self._clock()

    def _deliver(self, channel_id: str, state: str) -> None:
        with self._lock:
            channel = self.channels.get(channel_id)
            if channel is None or not self._live(channel):
                return
            self._numbers[channel_id] = self._numbers.get(channel_id, 0) + 1
            headers = {
                "X-Goog-Channel-ID": channel_id,
                "X-Goog-Channel-Expiration": format_datetime(
                    channel["expiration"].astimezone(UTC), usegmt=True
                ),
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(self._numbers[channel_id]),
                "X-Goog-Resource-ID": channel["resourceId"],
                "X-Goog-Resource-URI": channel["resourceUri"],
                "Content-Length": "0",
            }
            if channel["token"] is not None:
                headers["X-Goog-Channel-Token"] = channel["token"]
            self.deliveries.append((channel["address"], headers, b""))
        # One connection per delivery, closed after it: a receiver shutting down
        # is not held up by an idle keep-alive connection of the fake's.
        with requests.Session() as session:
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            session.verify = self.receiver_verify
            try:
                status: int | None = session.post(
                    channel["address"], data=b"", headers=headers, timeout=DELIVERY_TIMEOUT
                ).status_code
            except requests.RequestException:
                status = None
        with self._lock:
            self.delivery_statuses.append(status)

    def on_change(self, calendar_id: str) -> None:
        """Calendars listener: ``exists`` to every live channel on that calendar."""
        with self._lock:
            targets = [
                channel_id
                for channel_id, channel in self.channels.items()
                if channel["calendar_id"].lower() == calendar_id.lower() and self._live(channel)
            ]
        for channel_id in targets:
            self._queue.put((channel_id, "exists"))

    def expire(self, channel_id: str) -> None:
        """The channel reached its expiration: no more deliveries."""
        with self._lock:
            self.channels[channel_id]["expiration"] = self._clock() - timedelta(seconds=1)

    # ---- the routes ----------------------------------------------------------------------

    async def watch(self, request: Request, calendar_id: str) -> Response:
        """``events.watch``: open a channel on a calendar's events, then send ``sync``."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        channel_id = str(body.get("id") or "")
        if not channel_id:
            return google_error(400, "required", "Required", location="id")
        if len(channel_id) > MAX_CHANNEL_ID:
            return google_error(400, "invalid", "Channel id is too long.", location="id")
        if body.get("type") not in {"web_hook", "webhook"}:
            return google_error(400, "invalid", f"Invalid value for type: {body.get('type')}")
        address = str(body.get("address") or "")
        if not address.startswith("https://") and not (
            self.allow_http and address.startswith("http://")
        ):
            return google_error(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
            )
        ttl = DEFAULT_TTL
        params = body.get("params") or {}
        if "ttl" in params:
            try:
                ttl = timedelta(seconds=int(params["ttl"]))
            except (TypeError, ValueError):
                return google_error(400, "invalid", f"Invalid ttl: {params['ttl']}")
        ttl = min(ttl, self.max_ttl)  # Google may grant less than the ttl asked for
        expiration = self._clock() + ttl
        with self._lock:
            if channel_id in self.channels:
                return google_error(
                    400, "channelIdNotUnique", f"Channel id {channel_id} not unique"
                )
            resource_id = secrets.token_urlsafe(20)
            resource_uri = f"{self._api_url()}calendar/v3/calendars/{calendar_id}/events?alt=json"
            self.channels[channel_id] = {
                "resourceId": resource_id,
                "resourceUri": resource_uri,
                "address": address,
                "token": body.get("token"),
                "expiration": expiration,
                "calendar_id": calendar_id,
                "stopped": False,
            }
        self._queue.put((channel_id, "sync"))
        shown: dict[str, Any] = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": resource_id,
            "resourceUri": resource_uri,
            "expiration": str(int(expiration.timestamp() * 1000)),
        }
        if body.get("token") is not None:
            shown["token"] = body["token"]
        return JSONResponse(shown)

    async def stop_channel(self, request: Request) -> Response:
        """``channels.stop``: 204; an unknown (id, resourceId) pair is 404."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return google_error(400, "parseError", "Parse Error")
        channel_id, resource_id = str(body.get("id") or ""), str(body.get("resourceId") or "")
        with self._lock:
            channel = self.channels.get(channel_id)
            if channel is None or channel["resourceId"] != resource_id or channel["stopped"]:
                return google_error(
                    404, "notFound", f"Channel '{channel_id}' not found for project."
                )
            channel["stopped"] = True
        return Response(status_code=204)
