"""POSTs of signed webhook deliveries, with one pooled httpx client.

No redirect is followed (a receiver that moved says so with a 3xx, which
counts as a failed attempt: the signature covers one URL), and the client's
timeout bounds each attempt, so a slow endpoint holds one worker for at
most that long.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from engine.errors import TransientError
from engine.ports import RequestObserver, status_class


class HttpWebhookSender:
    def __init__(self, *, timeout: float = 10.0, ca_file: str | None = None,
                 observe: RequestObserver | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False,
                                    verify=ca_file or True, transport=transport)
        self._observe = observe

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            response = self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            if self._observe is not None:
                self._observe("error")
            raise TransientError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        if self._observe is not None:
            self._observe(status_class(response.status_code))
        return response.status_code

    def close(self) -> None:
        self._client.close()
