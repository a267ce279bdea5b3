"""Loading the TOML config file into a ``Config``.

``load_config(path)`` reads, checks and converts the whole file and either
returns a ``Config`` or raises ``ConfigError`` listing every problem, one line
each, named by key path::

    calendars.alice.account: unknown account 'dav'
    event_types.consultation.horizon: 120d reaches past sync.window_future (90d), …

Secrets are not read here: the config holds ``SecretRef``s, and
``resolve_secret`` reads one when the daemon needs it, so ``check-config``
passes on a machine that lacks the production environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from daemon.config import entries as config_entries
from daemon.config import schema
from daemon.config import sections as config_sections
from daemon.config.checker import Checker
from daemon.config.settings import Config, LinkSettings, RetentionSettings, SecretRef, SyncSettings

S = TypeVar("S", bound=schema.Section)

SECTIONS = ("daemon", "http", "sync", "links", "retention", "api", "accounts", "calendars",
            "pools", "event_types", "webhooks", "smtp")


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` are the lines to show,
    each a sentence naming the file or a key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_config(path: Path | str) -> Config:
    """Read, check and convert the config file at ``path``."""
    path = Path(path)
    document = read_document(path)
    folder = path.resolve().parent
    checker = Checker(document, folder)
    config = build(checker)
    if config is None or checker.problems:
        raise ConfigError(checker.problems)
    return replace(config, path=path.resolve(), fingerprint=fingerprint_of(document))


def fingerprint_of(document: Mapping[str, Any]) -> str:
    """The sha256 of ``document`` as canonical JSON: the same for the same
    settings however the file is laid out.  ``http.listen`` is left out:
    processes that share a host listen on different ports."""
    shared = dict(document)
    if isinstance(shared.get("http"), dict):
        shared["http"] = {key: value for key, value in shared["http"].items() if key != "listen"}
    canonical = json.dumps(shared, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_document(path: Path) -> dict[str, Any]:
    """The parsed TOML; a ``ConfigError`` of one sentence when the file is
    missing, unreadable or not TOML (with line and column)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror})"]) from None
    try:
        text = data.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            [f"{path}: not UTF-8 text (at line {line}, column {column})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {_placed(str(exc), text)}"]) from None


_AT_END = "(at end of document)"


def _placed(message: str, text: str) -> str:
    """tomllib's message, which ends with "(at line L, column C)" except
    when the document ended too soon: then the place is the end of the last
    line that holds anything, so every parse error names a line and column."""
    if not message.endswith(_AT_END):
        return message
    content = text.rstrip()
    line = content.count("\n") + 1
    column = len(content) - (content.rfind("\n") + 1) + 1
    return f"{message[: -len(_AT_END)]}(at end of document: line {line}, column {column})"


def build(checker: Checker) -> Config | None:
    """Check every section of ``checker.document``; the ``Config`` when no
    problem was found (the caller sets its ``path``)."""
    document = checker.document
    for key in document:
        if key not in SECTIONS:
            checker.problem(key, "unknown key")

    def section(model: type[S], name: str) -> S | None:
        return checker.validate(model.model_validate, document.get(name, {}), name)

    daemon = section(schema.DaemonSection, "daemon")
    http = section(schema.HttpSection, "http")
    sync = section(schema.SyncSection, "sync")
    links = section(schema.LinksSection, "links")
    retention = section(schema.RetentionSection, "retention")
    api = section(schema.ApiSection, "api")

    daemon_settings = config_sections.daemon_settings(checker, daemon) if daemon else None
    http_settings = config_sections.http_settings(checker, http) if http else None
    api_tokens = config_sections.api_tokens(checker, api) if api else ()
    accounts, declared_accounts = config_sections.accounts(checker)
    if sync and http_settings:
        config_sections.check_push(checker, sync, http_settings, accounts)

    zone = daemon.timezone if daemon else "UTC"
    calendars, sources, declared_calendars = config_entries.calendars(
        checker, zone, accounts, declared_accounts)
    pools, declared_pools = config_entries.pools(checker, zone, calendars, declared_calendars)
    event_types = config_entries.event_types(
        checker, calendars, declared_calendars, pools, declared_pools,
        sync.window_future if sync else None)

    declared_types = document.get("event_types")
    webhooks = (config_sections.webhooks(
        checker, document["webhooks"], declared_types if isinstance(declared_types, dict) else {})
        if "webhooks" in document else ())
    smtp = config_sections.smtp(checker, document["smtp"]) if "smtp" in document else None

    if (checker.problems or daemon_settings is None or http_settings is None or sync is None
            or links is None or retention is None):
        return None
    return Config(
        path=checker.folder,
        daemon=daemon_settings,
        http=http_settings,
        sync=SyncSettings(**sync.model_dump()),
        links=LinkSettings(**links.model_dump()),
        retention=RetentionSettings(**retention.model_dump()),
        api_tokens=api_tokens,
        accounts=accounts,
        calendars=calendars,
        sources=sources,
        pools=pools,
        event_types=event_types,
        webhooks=webhooks,
        smtp=smtp,
    )


def resolve_secret(ref: SecretRef, environ: Mapping[str, str] | None = None) -> str:
    """The secret ``ref`` points to: the variable's value, or the file's text
    without its trailing line break.

    Raises ``ConfigError`` naming the key and the variable or file when the
    variable is unset or empty, or the file cannot be read.
    """
    if ref.env is not None:
        value = (os.environ if environ is None else environ).get(ref.env)
        if not value:
            state = "is not set" if value is None else "is empty"
            raise ConfigError([f"{ref.key_path}: environment variable {ref.env} {state}"])
        return value
    assert ref.file is not None
    try:
        value = ref.file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([f"{ref.key_path}: cannot read {ref.file} ({reason})"]) from None
    if not value:
        raise ConfigError([f"{ref.key_path}: {ref.file} is empty"])
    return value
