"""Injected faults come out of the memory connector as the error tree says,
and transient ones are retried as the connector protocol asks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.memory import Fault, FaultKind, MemoryConnector, Operation
from engine.errors import (
    AuthFailed,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)
from tests.connectors.memory.memory_fixtures import CAL, WINDOW, booking, connected, meeting

CALLS: dict[str, Callable[[MemoryConnector], object]] = {
    "list_window": lambda c: c.list_window(CAL, WINDOW),
    "free_busy": lambda c: c.free_busy([CAL], WINDOW),
    "create_event": lambda c: c.create_event(CAL, booking()),
    "delete_event": lambda c: c.delete_event(CAL, "b1"),
    "start_channel": lambda c: c.start_channel(
        CAL, address="https://h/x", token="t", ttl_seconds=60
    ),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FaultKind.UNREACHABLE, TransientError),
        (FaultKind.UNAVAILABLE, TransientError),
        (FaultKind.UNAUTHORIZED, AuthFailed),
        (FaultKind.BAD_REQUEST, PermanentError),
    ],
)
def test_fault_maps_onto_the_error_tree_naming_the_calendar(
    call: Callable[[MemoryConnector], object], kind: FaultKind, error: type[ConnectorError]
) -> None:
    provider, connector = connected(attempts=1)
    provider.inject(Fault(kind=kind))

    with pytest.raises(error) as caught:
        call(connector)

    assert type(caught.value) is error
    assert caught.value.calendar == CAL.id
    call(connector)  # the fault was for one request only


def test_transient_fault_is_retried_within_the_call() -> None:
    provider, connector = connected(attempts=2)
    provider.put(CAL.id, "m", meeting("m"))
    provider.inject(Fault(kind=FaultKind.UNAVAILABLE))

    assert list(connector.list_window(CAL, WINDOW).objects) == ["m"]


def test_transient_fault_past_the_attempts_raises() -> None:
    provider, connector = connected(attempts=2)
    provider.inject(Fault(kind=FaultKind.UNREACHABLE, times=2))

    with pytest.raises(TransientError):
        connector.list_window(CAL, WINDOW)
    connector.list_window(CAL, WINDOW)


def test_throttle_that_names_its_wait_is_left_to_the_caller() -> None:
    """A RateLimited with retry_after is not retried at once: the caller
    waits as asked (the account-wide cool-down)."""
    provider, connector = connected(attempts=3)
    provider.inject(Fault(kind=FaultKind.THROTTLED, retry_after=30))

    with pytest.raises(RateLimited) as caught:
        connector.free_busy([CAL], WINDOW)
    assert caught.value.retry_after == 30


def test_throttle_without_a_wait_is_retried() -> None:
    provider, connector = connected(attempts=2)
    provider.inject(Fault(kind=FaultKind.THROTTLED))

    assert connector.free_busy([CAL], WINDOW).busy == {CAL.id: ()}


def test_fault_aimed_at_writes_spares_reads() -> None:
    provider, connector = connected(attempts=1)
    provider.inject(Fault(kind=FaultKind.UNAVAILABLE, operations=frozenset({Operation.CREATE})))

    connector.list_window(CAL, WINDOW)
    with pytest.raises(TransientError):
        connector.create_event(CAL, booking())
    connector.create_event(CAL, booking())


def test_faults_answer_in_the_order_injected() -> None:
    provider, connector = connected(attempts=1)
    provider.inject(Fault(kind=FaultKind.UNAUTHORIZED))
    provider.inject(Fault(kind=FaultKind.BAD_REQUEST))

    with pytest.raises(AuthFailed):
        connector.list_window(CAL, WINDOW)
    with pytest.raises(PermanentError):
        connector.list_window(CAL, WINDOW)


def test_offline_provider_answers_nothing_until_back() -> None:
    provider, connector = connected(attempts=3)
    provider.reachable = False
    with pytest.raises(TransientError):
        connector.list_window(CAL, WINDOW)
    provider.reachable = True
    connector.list_window(CAL, WINDOW)


def test_revoked_account_is_auth_failed_and_others_go_on() -> None:
    provider, connector = connected()
    provider.add_account("second")
    other = MemoryConnector(provider, account="second")
    provider.revoke_account("calpool")

    with pytest.raises(AuthFailed):
        connector.list_window(CAL, WINDOW)
    other.list_window(CAL, WINDOW)


def test_fault_needs_at_least_one_request() -> None:
    provider, _ = connected()
    with pytest.raises(ValueError, match="at least once"):
        provider.inject(Fault(kind=FaultKind.UNAVAILABLE, times=0))


def test_missing_calendar_in_a_free_busy_batch_is_reported_alone() -> None:
    _, connector = connected()
    missing = CAL.__class__("nowhere", CAL.timezone)
    answer = connector.free_busy([CAL, missing], WINDOW)
    assert answer.busy == {CAL.id: ()}  # the others are still answered
    error = answer.errors["nowhere"]
    assert isinstance(error, NotFound)
    assert error.calendar == "nowhere"
    with pytest.raises(NotFound):
        answer.of("nowhere")
