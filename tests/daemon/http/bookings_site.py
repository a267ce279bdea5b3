"""The HTTP hook's site (``tests/daemon/http/conftest.py``) with its
calendars on a real Radicale, so that bookings are written and can be
looked at with raw WebDAV requests."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.daemon.http.conftest import CONFIG, TOKENS, MakeSite, Site
from tests.support.booking_copies import booking_key, event_names
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.config_builder import SiteConfig

CALENDAR_IDS = {"alice": "alice/", "bob": "bob/", "room-a": "rooms/a/", "room-b": "rooms/b/",
                "room-c": "rooms/c/"}
# Thursday 2027-03-25 (now is 08:00 Berlin): alice works 09:00-12:00.
SLOT = "2027-03-25T10:00:00+01:00"
ANN = {"name": "Ann Example", "email": "ann@example.com"}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("http-bookings-radicale"))
    yield server
    server.stop()


@dataclass
class DavSite:
    site: Site
    server: Server
    ids: dict[str, str]  # calendar key -> calendar id on the server

    @property
    def app(self) -> Any:
        return self.site.app

    def post(self, body: Any, token: str | None = "desk", key: str | None = None,
             **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {TOKENS.get(token, token)}"
        if key is not None:
            headers["Idempotency-Key"] = key
        if isinstance(body, (bytes, str)):
            return self.site.client.post("/v1/bookings", content=body, headers=headers, **kwargs)
        return self.site.client.post("/v1/bookings", json=body, headers=headers, **kwargs)

    def get(self, url: str, token: str | None = "desk", **kwargs: Any) -> Any:
        return self.site.get(url, token=token, **kwargs)

    def delete(self, url: str, token: str | None = "desk") -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {TOKENS.get(token, token)}"}
        return self.site.client.delete(url, headers=headers)

    def uids(self, key: str) -> list[str]:
        """The events the server holds in ``key``'s calendar, read with plain
        PROPFIND and GET (not through calpool): calpool's copies as
        :func:`uid_of` their booking, others by UID (see booking_copies)."""
        status, _, body = self.server.request(
            "PROPFIND", f"{self.server.home}{self.ids[key]}",
            b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            {"Depth": "1", "Content-Type": "application/xml"})
        assert status == 207, status
        found = []
        for href in re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</", body.decode()):
            status, _, ics = self.server.request("GET", self.server.url.rstrip("/") + href)
            assert status == 200, (href, status)
            found += event_names(ics.decode(), self.ids[key])
        return sorted(found)


def dav_config(server: Server, *, confirm_within: str = "5s") -> tuple[
        SiteConfig, dict[str, str]]:
    """The hook tests' config (``CONFIG``) with every calendar fresh on
    ``server``, and the calendars' ids there."""
    config = (SiteConfig.from_toml(CONFIG)
              .caldav_account("dav", url=server.home)
              .http(confirm_within=confirm_within))
    ids = {}
    for key in CALENDAR_IDS:
        name = f"{key}-{next(_names)}"
        server.make_calendar(name)
        ids[key] = f"{name}/"
        config.calendar(key, id=ids[key])
    return config, ids


def make_dav_site(make_site: MakeSite, server: Server, **options: Any) -> DavSite:
    config, ids = dav_config(server, **options)
    return DavSite(make_site(config.text()), server, ids)


def uid_of(booking_id: str) -> str:
    """How :meth:`DavSite.uids` names ``booking_id``'s copy in any calendar
    (each copy has a UID of its own; sync knows them by the booking id)."""
    return booking_key(booking_id)


def down_room_config(dav: DavSite, *, live_recheck: bool = False) -> SiteConfig:
    """``dav``'s config with room-c on an account whose server refuses
    connections, provider writes confirmed within 1s, and the team meeting
    rechecked live when ``live_recheck``."""
    config = (SiteConfig.read(dav.site.app.config.path)
              .caldav_account("down", url=f"http://127.0.0.1:{free_port()}/")
              .calendar("room-c", account="down")
              .http(confirm_within="1s"))
    if live_recheck:
        config.event_type("team", live_recheck=True)
    return config
