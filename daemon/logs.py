"""Logging for every calpool process: text by default, or one JSON object a line.

Log records may carry ``calendar``, ``booking`` and ``request_id`` (passed as
``extra=``); the JSON format writes them as fields, the text format appends
them.

Nothing secret leaves through the log: both formats pass every message
and traceback through a :class:`Redactor`, which blanks the configured
secrets (API tokens, provider passwords and keys: :func:`secrets_of`),
credentials in ``Authorization`` headers and URLs, and every email address
that is not one of the configured calendars' own (attendees are customers;
caldav's debug log prints whole request bodies with their ``ATTENDEE``
lines).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from daemon.config import ConfigError, resolve_secret
from daemon.config.settings import CaldavAccount, Config, GoogleAccount, MicrosoftAccount, SecretRef

CONTEXT_FIELDS = ("calendar", "booking", "request_id")

REDACTED = "[redacted]"
EMAIL_REDACTED = "[email]"
# iCalendar folds long lines ("mailto:jane.cus\r\n tomer@example.org"), and a
# logged body may show the fold escaped (repr of bytes): an address may
# contain either kind of fold and is blanked whole.
_FOLD = r"(?:\r?\n[ \t]|(?:\\r)?\\n[ \t])"
_EMAIL = re.compile(
    rf"(?:[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]|{_FOLD})+@"
    rf"[A-Za-z0-9-](?:[A-Za-z0-9-]|{_FOLD})*(?:\.(?:[A-Za-z0-9-]|{_FOLD})+)+"
)
_FOLDS = re.compile(_FOLD)
# "Authorization: Basic abc", "'Authorization': 'Bearer abc'", "authorization=abc"
_AUTH_HEADER = re.compile(
    r"""((?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)[^'"\r\n,}]+""", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)
# Secrets shorter than this would blank common words; the config refuses none.
MIN_SECRET_LENGTH = 6


class Redactor:
    """Blanks secrets and strangers' email addresses in log text.  Secrets
    can be added while the process runs (a reload reads new tokens)."""

    def __init__(self, secrets: Iterable[str] = (), keep_addresses: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._keep: frozenset[str] = frozenset()
        self.update(secrets, keep_addresses)

    def update(self, secrets: Iterable[str], keep_addresses: Iterable[str] = ()) -> None:
        found = {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}
        with self._lock:
            # Longest first, so a secret containing another is blanked whole.
            merged = set(self._secrets) | found
            self._secrets = tuple(sorted(merged, key=len, reverse=True))
            self._keep = self._keep | {address.lower() for address in keep_addresses}

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets, keep = self._secrets, self._keep
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", text)
        return _EMAIL.sub(
            lambda m: m.group(0) if _FOLDS.sub("", m.group(0)).lower() in keep
            else EMAIL_REDACTED, text)


# The process's one redactor: the handler installed by ``configure`` uses it.
REDACTOR = Redactor()


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = self._redact(str(value))
        if record.exc_info:
            document["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor = REDACTOR) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        ]
        return self._redact(f"{text} [{' '.join(context)}]" if context else text)


def configure(log_format: str, level: str, stream: TextIO | None = None) -> None:
    """Route calpool's and its libraries' records to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The scheduler reports every job run at INFO; that is noise at our INFO.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    # caldav pins its logger to WARNING on import; at debug, ops want the
    # DAV requests and answers it logs (the redactor blanks what they hold).
    logging.getLogger("caldav").setLevel(max(logging.DEBUG, root.level)
                                         if root.level <= logging.DEBUG else logging.WARNING)


def protect(config: Config, redactor: Redactor = REDACTOR) -> None:
    """Teach ``redactor`` the config's secrets and the calendars' own
    addresses (those may show; an attendee's may not)."""
    keep = [
        candidate
        for source in config.sources.values()
        for candidate in (source.subject, source.external_id)
        if candidate and "@" in candidate
    ]
    redactor.update(secrets_of(config), keep)


def secrets_of(config: Config) -> list[str]:
    """Every secret value the config points to that can be read now (an
    unreadable one is reported where it is used, not here)."""
    refs: list[SecretRef] = [token.secret for token in config.api_tokens if token.secret]
    for account in config.accounts.values():
        if isinstance(account, CaldavAccount) and account.password is not None:
            refs.append(account.password)
        elif isinstance(account, MicrosoftAccount) and account.client_secret is not None:
            refs.append(account.client_secret)
        elif isinstance(account, GoogleAccount):
            refs.append(account.service_account)
    found: list[str] = []
    for ref in refs:
        try:
            value = resolve_secret(ref)
        except ConfigError:
            continue
        found.append(value)
        found.extend(key_material(value))
    return found


def key_material(value: str) -> list[str]:
    """The private key inside a service account's JSON, and each of its
    lines (a traceback may quote one line of it)."""
    try:
        document = json.loads(value)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    key = document.get("private_key")
    if not isinstance(key, str):
        return []
    lines = [line for line in key.splitlines() if len(line) >= 16 and "-----" not in line]
    return [key, *lines]
