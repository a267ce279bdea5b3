"""Calendar ids resolve against the account URL as a browser resolves links."""

from __future__ import annotations

import pytest

from connectors.caldav.account import (
    CalDAVAccount,
    SyncMethod,
    booking_href,
    booking_uid,
    copy_uid,
)


@pytest.mark.parametrize(
    ("account_url", "calendar_id", "expected"),
    [
        ("https://dav.example/dav/", "rooms/spree/", "https://dav.example/dav/rooms/spree/"),
        ("https://dav.example/dav/", "rooms/spree", "https://dav.example/dav/rooms/spree/"),
        ("https://dav.example/dav", "rooms/spree/", "https://dav.example/dav/rooms/spree/"),
        ("https://dav.example/dav/", "/x/", "https://dav.example/x/"),
        ("https://dav.example/dav/", "../other/", "https://dav.example/other/"),
        ("https://dav.example/dav/", "https://cal.example/c/", "https://cal.example/c/"),
        ("http://127.0.0.1:5232/", "alice/work/", "http://127.0.0.1:5232/alice/work/"),
    ],
)
def test_calendar_id_resolves_like_a_link(
    account_url: str, calendar_id: str, expected: str
) -> None:
    assert CalDAVAccount(url=account_url).calendar_url(calendar_id) == expected


@pytest.mark.parametrize("url", ["dav.example/dav/", "ftp://dav.example/", "https:///dav/"])
def test_account_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        CalDAVAccount(url=url)


def test_sync_method_is_read_from_its_config_spelling() -> None:
    assert CalDAVAccount(url="https://h/", sync_method="etag").sync_method is SyncMethod.ETAG  # type: ignore[arg-type]


def test_password_stays_out_of_repr() -> None:
    assert "s3cret" not in repr(CalDAVAccount(url="https://h/", username="u", password="s3cret"))


def test_booking_href_is_stable_and_inside_the_calendar() -> None:
    url = "https://h/dav/rooms/spree/"
    assert booking_href(url, "b-42") == "https://h/dav/rooms/spree/calpool-b-42.ics"
    assert booking_href(url, "b-42") == booking_href(url, "b-42")
    assert booking_uid("b-42") == "calpool-b-42@calpool"


@pytest.mark.parametrize("booking_id", ["a/../b", "ünïcode", "x" * 300, "..", "with space"])
def test_untame_booking_ids_become_digests(booking_id: str) -> None:
    href = booking_href("https://h/c/", booking_id)
    name = href.removeprefix("https://h/c/")
    assert "/" not in name and name.startswith("calpool-") and name.endswith(".ics")
    assert len(name) < 60
    assert booking_href("https://h/c/", booking_id + "!") != href


def test_each_calendar_copy_has_a_stable_uid_of_its_own() -> None:
    assert copy_uid("b-42", "room-a/") == copy_uid("b-42", "room-a/")  # retries write the same
    assert copy_uid("b-42", "room-a/") != copy_uid("b-42", "room-b/")
    assert copy_uid("b-42", "room-a/") != booking_uid("b-42")  # the owner's copy keeps that one
    assert copy_uid("b-42", "room-a/").startswith("calpool-b-42-")
    assert copy_uid("b-42", "room-a/").endswith("@calpool")
