"""Google push deliveries parsed from their headers (any case), and
anything else refused
(https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.google.push import parse
from engine.errors import PermanentError
from engine.ports import NotificationKind

HEADERS = {
    "X-Goog-Channel-ID": "chan-1",
    "X-Goog-Channel-Token": "secret",
    "X-Goog-Resource-ID": "res-1",
    "X-Goog-Resource-State": "exists",
    "X-Goog-Message-Number": "7",
}


@given(st.sampled_from([str.lower, str.upper, str.title, lambda s: s]),
       st.sampled_from([("sync", NotificationKind.SYNC), ("exists", NotificationKind.CHANGED),
                        ("not_exists", NotificationKind.CHANGED)]))
def test_a_delivery_is_read_from_its_headers_in_any_case(
        spell: object, state: tuple[str, NotificationKind]) -> None:
    assert callable(spell)
    headers = {spell(name): value for name, value in {
        **HEADERS, "X-Goog-Resource-State": state[0]}.items()}
    (note,) = parse(headers)
    assert (note.channel_id, note.resource_id, note.token, note.message, note.kind) == (
        "chan-1", "res-1", "secret", "7", state[1])


@pytest.mark.parametrize("missing", ["X-Goog-Channel-ID", "X-Goog-Resource-ID",
                                     "X-Goog-Resource-State"])
def test_a_delivery_without_googles_headers_is_refused(missing: str) -> None:
    with pytest.raises(PermanentError):
        parse({name: value for name, value in HEADERS.items() if name != missing})


@given(st.text(min_size=1).filter(lambda s: s not in ("sync", "exists", "not_exists")))
def test_an_unknown_resource_state_is_refused(state: str) -> None:
    with pytest.raises(PermanentError):
        parse({**HEADERS, "X-Goog-Resource-State": state})
