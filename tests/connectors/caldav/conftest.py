"""Fixtures of the CalDAV connector's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.caldav.junk_server import JunkServer


@pytest.fixture(scope="module")
def junk_server() -> Iterator[JunkServer]:
    server = JunkServer()
    yield server
    server.stop()
