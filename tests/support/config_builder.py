"""One way for tests to write a calpool config: :class:`SiteConfig` holds
the TOML document as nested dicts, grows by method calls named for the
config's sections, and renders with ``tomli_w``.

The builder checks nothing: it writes the keys it is given, so an invalid
combination (an owner that is a room, a horizon past ``sync.window_future``,
an inline secret) reaches calpool's own ``load_config`` and fails there with
calpool's error.  A key left as ``None`` is not written, so calpool's
default applies.  Every method changes this config and returns it, so calls
chain; :meth:`SiteConfig.copy` starts a variant.

    config = (SiteConfig()
              .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin")
              .caldav_account("dav", url=server.home)
              .calendars({"alice": "alice/", "room-a": "rooms/a/"}, persons={"alice"})
              .pool("rooms", members=["room-a"])
              .event_type("consult", title="Consultation", duration="30m", owner="alice",
                          pools=["rooms"]))
    settings = config.migrated(tmp_path)   # written, loaded, database migrated
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from daemon.config.settings import Config
from tests.support import sites

# What a config key may hold here: TOML's strings, integers and booleans,
# arrays of strings, and inline tables of strings (working hours).
Value = str | int | bool | Sequence[str] | Mapping[str, str]


def _given(values: Mapping[str, Value | None]) -> dict[str, Any]:
    """``values`` without the ones left out (``None``), as plain TOML values."""
    return {key: _plain(value) for key, value in values.items() if value is not None}


def _plain(value: Value) -> Any:
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    return list(value)


class SiteConfig:
    """A calpool config file under construction."""

    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self.document: dict[str, Any] = copy.deepcopy(dict(document or {}))

    @classmethod
    def from_toml(cls, text: str) -> SiteConfig:
        """A builder that starts from an existing config's text."""
        return cls(tomllib.loads(text))

    @classmethod
    def read(cls, path: Path) -> SiteConfig:
        """A builder that starts from the config file at ``path``."""
        return cls.from_toml(path.read_text(encoding="utf-8"))

    def copy(self) -> SiteConfig:
        """An independent builder with the same document, to make a variant."""
        return SiteConfig(self.document)

    # ---- settings sections: each call sets the given keys of its section ----

    def daemon(self, **settings: Value) -> SiteConfig:
        """Keys of ``[daemon]`` (``database``, ``timezone``, ``log_format``, …)."""
        return self._section("daemon", settings)

    def http(self, **settings: Value) -> SiteConfig:
        """Keys of ``[http]`` (``listen``, ``public_url``, ``confirm_within``, …)."""
        return self._section("http", settings)

    def sync(self, **settings: Value) -> SiteConfig:
        """Keys of ``[sync]`` (``window_future``, ``stale_after``, ``push``, …)."""
        return self._section("sync", settings)

    def links(self, **settings: Value) -> SiteConfig:
        """Keys of ``[links]`` (``default_expiry``)."""
        return self._section("links", settings)

    def retention(self, **settings: Value) -> SiteConfig:
        """Keys of ``[retention]`` (``bookings``, ``idempotency_keys``)."""
        return self._section("retention", settings)

    def smtp(self, **settings: Value) -> SiteConfig:
        """``[smtp]``; its ``from`` key is given as ``sender``."""
        if "sender" in settings:
            settings["from"] = settings.pop("sender")
        return self._section("smtp", settings)

    def _section(self, name: str, settings: Mapping[str, Value | None]) -> SiteConfig:
        self.document.setdefault(name, {}).update(_given(settings))
        return self

    # ---- API tokens ----

    def api_token(self, name: str, *, scopes: Sequence[str], token_env: str | None = None,
                  token_file: str | None = None, sha256: str | None = None) -> SiteConfig:
        """One more ``[[api.tokens]]`` entry, after those already there."""
        entry = _given({"name": name, "token_env": token_env, "token_file": token_file,
                        "sha256": sha256, "scopes": scopes})
        self.document.setdefault("api", {}).setdefault("tokens", []).append(entry)
        return self

    # ---- named entries: each call sets the given keys of ``[SECTION.KEY]`` ----

    def account(self, key: str, *, provider: str, **settings: Value) -> SiteConfig:
        """``[accounts.KEY]`` of any provider, with its keys as given."""
        return self._entry("accounts", key, {"provider": provider, **settings})

    def caldav_account(self, key: str, *, url: str, username: str | None = None,
                       password_env: str | None = None, password_file: str | None = None,
                       sync_method: str | None = None, ca_file: str | None = None) -> SiteConfig:
        """``[accounts.KEY]`` of a CalDAV server."""
        return self._entry("accounts", key, {
            "provider": "caldav", "url": url, "username": username,
            "password_env": password_env, "password_file": password_file,
            "sync_method": sync_method, "ca_file": ca_file})

    def calendar(self, key: str, *, account: str | None = None, id: str | None = None,
                 kind: str | None = None, timezone: str | None = None,
                 working_hours: Mapping[str, str] | None = None,
                 overrides: Mapping[str, str] | None = None, name: str | None = None,
                 capacity: int | None = None, subject: str | None = None) -> SiteConfig:
        """``[calendars.KEY]``: the keys given are set, the others kept."""
        return self._entry("calendars", key, {
            "account": account, "id": id, "kind": kind, "timezone": timezone,
            "subject": subject, "name": name, "capacity": capacity,
            "working_hours": working_hours, "overrides": overrides})

    def calendars(self, ids: Mapping[str, str], *, persons: Collection[str],
                  account: str = "dav", timezone: str | None = None,
                  working_hours: Mapping[str, str] | None = None) -> SiteConfig:
        """One ``[calendars.KEY]`` per entry of ``ids`` (key to its id on
        the server) of ``account``: a person where the key is in
        ``persons``, else a room; ``timezone`` and ``working_hours`` go
        into each."""
        for key, calendar_id in ids.items():
            self.calendar(key, account=account, id=calendar_id,
                          kind="person" if key in persons else "room",
                          timezone=timezone, working_hours=working_hours)
        return self

    def pool(self, key: str, *, members: Sequence[str] | None = None,
             assignment: str | None = None, reporting_cycle: str | None = None,
             timezone: str | None = None) -> SiteConfig:
        """``[pools.KEY]``: ``members`` in priority order."""
        return self._entry("pools", key, {
            "members": members, "assignment": assignment, "reporting_cycle": reporting_cycle,
            "timezone": timezone})

    def event_type(self, key: str, *, title: str | None = None, description: str | None = None,
                   duration: str | None = None, step: str | None = None,
                   owner: str | None = None, with_: Sequence[str] | None = None,
                   pools: Sequence[str] | None = None, buffer_before: str | None = None,
                   buffer_after: str | None = None, min_notice: str | None = None,
                   horizon: str | None = None, max_per_day: int | None = None,
                   live_recheck: bool | None = None, public: bool | None = None,
                   notify_attendee: bool | None = None) -> SiteConfig:
        """``[event_types.KEY]`` (``with_`` is the ``with`` key)."""
        return self._entry("event_types", key, {
            "title": title, "description": description, "duration": duration, "step": step,
            "owner": owner, "with": with_, "pools": pools, "buffer_before": buffer_before,
            "buffer_after": buffer_after, "min_notice": min_notice, "horizon": horizon,
            "max_per_day": max_per_day, "live_recheck": live_recheck, "public": public,
            "notify_attendee": notify_attendee})

    def without(self, section: str, key: str) -> SiteConfig:
        """``[SECTION.KEY]`` removed (it must be there)."""
        del self.document[section][key]
        return self

    def _entry(self, section: str, key: str, values: Mapping[str, Value | None]) -> SiteConfig:
        self.document.setdefault(section, {}).setdefault(key, {}).update(_given(values))
        return self

    # ---- output ----

    def text(self) -> str:
        """The config as TOML."""
        return tomli_w.dumps(self.document)

    def write(self, folder: Path) -> Path:
        """The config written to ``folder/calpool.toml``; returns its path."""
        return sites.write_config(folder, self.text())

    def migrated(self, folder: Path) -> Config:
        """:meth:`write`, then the config loaded by calpool and its
        database migrated to the current schema."""
        return sites.migrated_config(folder, self.text())
