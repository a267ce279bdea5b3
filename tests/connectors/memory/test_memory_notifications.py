"""The memory provider's webhook body: what parses, and what is refused as
not one of its deliveries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from connectors.memory import push
from engine.errors import PermanentError
from engine.ports import HookReply, Notification, NotificationKind

NOTE = Notification("ch-1", "res-1", "tok", NotificationKind.CHANGED)


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_round_trip_of_several_notifications_in_one_delivery() -> None:
    second = Notification("ch-2", "res-2", "other", NotificationKind.REMOVED)
    headers, raw = push.encode([(NOTE, 1), (second, 7)])
    assert push.parse(headers, raw) == (replace(NOTE, message="1"), replace(second, message="7"))


def test_header_names_in_any_case_and_a_charset_parameter() -> None:
    _, raw = push.encode([(NOTE, 1)])
    assert push.parse({"CONTENT-TYPE": "application/json; charset=utf-8"}, raw) == (
        replace(NOTE, message="1"),
    )


def test_validation_token_in_the_query_is_a_handshake_echoing_it() -> None:
    (note,) = push.parse({}, b"", {"validationToken": "Validation: Token 1"})
    assert note.kind is NotificationKind.HANDSHAKE
    assert note.reply == HookReply(200, "text/plain", "Validation: Token 1")


@pytest.mark.parametrize(
    ("headers", "raw"),
    [
        # Google: state in headers, empty body
        (
            {
                "X-Goog-Channel-Id": "ch-1",
                "X-Goog-Resource-Id": "res-1",
                "X-Goog-Resource-State": "exists",
            },
            b"",
        ),
        # Graph: a JSON batch of its own shape
        (
            {"Content-Type": "application/json"},
            body({"value": [{"subscriptionId": "s", "clientState": "c", "changeType": "updated"}]}),
        ),
        ({"Content-Type": "application/json"}, b"\xff\xfe not utf-8"),
        ({"Content-Type": "application/json"}, body([1, 2, 3])),
        ({"Content-Type": "application/json"}, body({push.MARKER: 2, "notifications": []})),
        ({"Content-Type": "application/json"}, body({push.MARKER: 1, "notifications": []})),
        ({"Content-Type": "application/json"}, body({push.MARKER: 1, "notifications": ["x"]})),
        (
            {"Content-Type": "application/json"},
            body({push.MARKER: 1, "notifications": [{"channel_id": "c", "kind": "changed"}]}),
        ),
        (
            {"Content-Type": "application/json"},
            body(
                {
                    push.MARKER: 1,
                    "notifications": [
                        {"channel_id": "c", "resource_id": "r", "token": "t", "kind": "exploded"}
                    ],
                }
            ),
        ),
        ({"Content-Type": "text/plain"}, push.encode([(NOTE, 1)])[1]),
    ],
    ids=[
        "google",
        "graph",
        "not-utf8",
        "json-list",
        "other-version",
        "no-notifications",
        "not-an-object",
        "missing-fields",
        "unknown-kind",
        "wrong-content-type",
    ],
)
def test_foreign_or_broken_delivery_is_refused(headers: dict[str, str], raw: bytes) -> None:
    with pytest.raises(PermanentError):
        push.parse(headers, raw)
