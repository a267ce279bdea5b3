"""Fixtures of the Microsoft connector's tests: one Graph fake per module,
a fresh mailbox per test, and calpool's account of the fake's tenant."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connectors.microsoft import MicrosoftAccount, MicrosoftConnector
from engine.ports import CalendarRef
from tests.contract.graph_driver import graph_account
from tests.fakes.graph import GraphFake

_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake() -> Iterator[GraphFake]:
    with GraphFake() as running:
        yield running


@pytest.fixture
def account(fake: GraphFake) -> MicrosoftAccount:
    return replace(graph_account(fake), page_size=50)


@pytest.fixture
def mailbox(fake: GraphFake) -> CalendarRef:
    calendar = CalendarRef(f"person-{next(_names)}@contoso.example", "Europe/Berlin")
    fake.add_mailbox(calendar.id, timezone=calendar.timezone)
    return calendar


@pytest.fixture
def connector(account: MicrosoftAccount) -> Iterator[MicrosoftConnector]:
    made = MicrosoftConnector(account)
    yield made
    made.close()
