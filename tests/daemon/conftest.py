"""Fixtures for the daemon's tests: config files written to a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config

# A small valid config: CalDAV only (so push needs no https URL), two people,
# three rooms in two pools, one event type.  Rule tests edit one spot of it.
BASE = """\
[daemon]
timezone = "Europe/Berlin"

[accounts.dav]
provider = "caldav"
url = "https://dav.example/dav/"
password_env = "DAV_PASSWORD"

[calendars.alice]
account = "dav"
id = "alice/"
kind = "person"

[calendars.bob]
account = "dav"
id = "bob/"
kind = "person"

[calendars.room-a]
account = "dav"
id = "rooms/a/"
kind = "room"

[calendars.room-b]
account = "dav"
id = "rooms/b/"
kind = "room"

[calendars.room-c]
account = "dav"
id = "rooms/c/"
kind = "room"

[pools.small]
members = ["room-a", "room-b"]

[pools.large]
members = ["room-c"]

[event_types.consult]
title = "Consultation"
duration = "30m"
owner = "alice"
pools = ["small"]
"""

WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write TOML text to ``<tmp>/etc/calpool.toml`` and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "etc" / "calpool.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems_of(write_config: WriteConfig) -> Callable[[str], list[str]]:
    """The problem lines ``load_config`` reports for TOML text (fails the
    test when the text is valid)."""

    def problems(text: str) -> list[str]:
        path = write_config(text)
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        return raised.value.problems

    return problems


@pytest.fixture
def base() -> str:
    return BASE


@pytest.fixture
def edited() -> Callable[[str, str], str]:
    """``BASE`` with one snippet replaced (the snippet must be there); an
    empty ``old`` appends ``new``."""

    def edit(old: str, new: str) -> str:
        if not old:
            return BASE + "\n" + new
        assert old in BASE, f"{old!r} is not in the base config"
        return BASE.replace(old, new, 1)

    return edit
