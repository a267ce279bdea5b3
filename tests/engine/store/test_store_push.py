"""The store's push plumbing (revision 0005): the "sync requested" mark and
the message ids that spot redelivered notifications."""

from __future__ import annotations

from engine.store import Store
from tests.engine.store.samples import at


def test_mark_is_served_only_up_to_the_request_a_sync_read(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.sync_requests.outstanding() == []
        uow.sync_requests.request("alice", at(0))
        read_before_fetch = uow.sync_requests.requested("alice")
        uow.sync_requests.request("alice", at(1))  # arrives during the fetch
        uow.sync_requests.serve("alice", read_before_fetch)
        uow.commit()
        assert uow.sync_requests.outstanding() == ["alice"]
        assert uow.sync_requests.is_outstanding("alice")
        uow.sync_requests.serve("alice", uow.sync_requests.requested("alice"))
        uow.sync_requests.serve("alice", read_before_fetch)  # a late, older sync: no step back
        uow.commit()
        assert uow.sync_requests.outstanding() == []
        assert not uow.sync_requests.is_outstanding("room-a")  # never marked


def test_marked_calendars_come_longest_waiting_first(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.sync_requests.request("room-a", at(2))
        uow.sync_requests.request("alice", at(1))
        uow.commit()
        assert uow.sync_requests.outstanding() == ["alice", "room-a"]


def test_a_message_id_counts_once_until_forgotten(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.channels.first_delivery("ch-1", "7", at(0))
        assert not uow.channels.first_delivery("ch-1", "7", at(1))
        assert uow.channels.first_delivery("ch-2", "7", at(1))  # per channel
        uow.commit()
        assert uow.channels.forget_messages_before(at(1)) == 1
        assert uow.channels.first_delivery("ch-1", "7", at(2))
