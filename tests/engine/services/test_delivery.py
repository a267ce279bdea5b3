"""The delivery rule and the addresses the configuration reveals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.services.delivery import CalendarSource, invitation_delivery, known_addresses

SOURCES = {
    "alice": CalendarSource("work", "google", "alice@example.com"),
    "room-a": CalendarSource("work", "google", "c_room_a@resource.calendar.google.com"),
    "bob": CalendarSource("graph", "microsoft", "AAMkAGI2=", subject="bob@example.org"),
    "room-m": CalendarSource("graph", "microsoft", "room-m@example.org"),
    "carol": CalendarSource("dav", "caldav", "carol/calendar/"),
    "room-c": CalendarSource("dav", "caldav", "rooms/c/"),
    "room-x": CalendarSource("other-google", "google", "room-x@example.com"),
}


def test_an_inviting_provider_delivers_within_its_own_account_only() -> None:
    delivers = invitation_delivery(SOURCES)
    assert delivers("alice", "room-a")
    assert delivers("bob", "room-m")
    assert not delivers("alice", "room-x")  # Google, but another account
    assert not delivers("alice", "room-m")  # another provider
    assert not delivers("bob", "room-a")


def test_caldav_never_delivers_not_even_within_its_account() -> None:
    delivers = invitation_delivery(SOURCES)
    assert not delivers("carol", "room-c")
    assert not delivers("room-c", "carol")


def test_which_providers_invite_is_a_parameter() -> None:
    delivers = invitation_delivery(SOURCES, inviting={"caldav"})
    assert delivers("carol", "room-c")
    assert not delivers("alice", "room-a")


def test_addresses_come_from_the_subject_first_then_an_address_like_id() -> None:
    assert known_addresses(SOURCES) == {
        "alice": "alice@example.com",
        "room-a": "c_room_a@resource.calendar.google.com",
        "bob": "bob@example.org",
        "room-m": "room-m@example.org",
        "room-x": "room-x@example.com",
    }


def test_a_path_with_an_at_sign_is_no_address() -> None:
    sources = {"x": CalendarSource("dav", "caldav", "users/x@example.com/calendar/")}
    assert known_addresses(sources) == {}


providers = st.sampled_from(["google", "microsoft", "caldav", "memory"])
sources = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.builds(CalendarSource, st.sampled_from(["a1", "a2", "a3"]), providers,
              st.text("xy@/.", max_size=8)),
    min_size=1, max_size=6,
)


@given(sources)
def test_delivery_implies_an_inviting_provider_and_one_account(found: dict[str, CalendarSource]
                                                              ) -> None:
    delivers = invitation_delivery(found)
    for owner, mine in found.items():
        for other, theirs in found.items():
            expected = mine.provider in ("google", "microsoft") and mine.account == theirs.account
            assert delivers(owner, other) is expected


@given(sources)
def test_every_known_address_is_from_its_own_source(found: dict[str, CalendarSource]) -> None:
    for key, address in known_addresses(found).items():
        assert address in (found[key].subject, found[key].external_id)
        assert "@" in address and "/" not in address
