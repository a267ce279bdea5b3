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


def dav_config(server: Server, *, confirm_within: str = "5s", extra: str = "") -> tuple[
        str, dict[str, str]]:
    """The hook tests' config with every calendar fresh on ``server``."""
    text = CONFIG.replace('url = "https://dav.invalid/dav/"', f'url = "{server.home}"')
    text = text.replace("[sync]\n", f'[http]\nconfirm_within = "{confirm_within}"\n\n[sync]\n')
    ids = {}
    for key, old in CALENDAR_IDS.items():
        name = f"{key}-{next(_names)}"
        server.make_calendar(name)
        ids[key] = f"{name}/"
        text = text.replace(f'id = "{old}"', f'id = "{ids[key]}"')
    return text + extra, ids


def make_dav_site(make_site: MakeSite, server: Server, **options: Any) -> DavSite:
    text, ids = dav_config(server, **options)
    return DavSite(make_site(text), server, ids)


def uid_of(booking_id: str) -> str:
    """How :meth:`DavSite.uids` names ``booking_id``'s copy in any calendar
    (each copy has a UID of its own; sync knows them by the booking id)."""
    return booking_key(booking_id)


def down_room_config(dav: DavSite, *, live_recheck: bool = False) -> str:
    """room-c on an account whose server refuses connections."""
    text = dav.site.app.config.path.read_text()
    text = text.replace("[calendars.room-c]\naccount = \"dav\"",
                        "[calendars.room-c]\naccount = \"down\"")
    text += f'\n[accounts.down]\nprovider = "caldav"\nurl = "http://127.0.0.1:{free_port()}/"\n'
    if live_recheck:
        text = text.replace('with = ["bob"]', 'with = ["bob"]\nlive_recheck = true')
    return text.replace('confirm_within = "5s"', 'confirm_within = "1s"')
