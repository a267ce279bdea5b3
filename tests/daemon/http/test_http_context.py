"""What the hook writes to the log about a request."""

from __future__ import annotations

import pytest

from daemon.http.context import loggable_path


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/v1/links/abcDEF_-123/bookings", "/v1/links/<token>/bookings"),
        ("/v1/links/abcDEF_-123/slots", "/v1/links/<token>/slots"),
        ("/v1/links/abcDEF_-123", "/v1/links/<token>"),
        ("/book/abcDEF_-123", "/book/<token>"),
        ("/manage/abcDEF_-123", "/manage/<token>"),
        ("/manage/abcDEF_-123/reschedule", "/manage/<token>/reschedule"),
        ("/v1/event-types/consultation/slots", "/v1/event-types/consultation/slots"),
        ("/v1/links", "/v1/links"),
    ],
)
def test_link_tokens_never_reach_the_log(path: str, logged: str) -> None:
    """Regression: an unexpected error on a link route logged the path, and
    with it the link token, which alone authorises a booking."""
    assert loggable_path(path) == logged
