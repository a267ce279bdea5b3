"""Checks and conversions of the settings sections and the accounts."""

from __future__ import annotations

from collections.abc import Collection
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from daemon.config import schema
from daemon.config.checker import Checker, key_path
from daemon.config.durations import parse_rate
from daemon.config.settings import (
    DEFAULT_MAX_CONCURRENT,
    SMTP_PORTS,
    Account,
    ApiToken,
    CaldavAccount,
    DaemonSettings,
    GoogleAccount,
    HttpSettings,
    MicrosoftAccount,
    SecretRef,
    SmtpSettings,
    WebhookSettings,
)
from daemon.config.values import parse_listen, resolve_database_url

_ACCOUNT: TypeAdapter[Any] = TypeAdapter(schema.AnyAccountSection)


def daemon_settings(checker: Checker, daemon: schema.DaemonSection) -> DaemonSettings | None:
    try:
        database_url = resolve_database_url(daemon.database, checker.folder)
    except ValueError as exc:
        checker.problem("daemon.database", str(exc))
        return None
    return DaemonSettings(database_url=database_url, timezone=daemon.timezone,
                          log_format=daemon.log_format, log_level=daemon.log_level,
                          outbox_claim_hold=daemon.outbox_claim_hold)


def http_settings(checker: Checker, http: schema.HttpSection) -> HttpSettings:
    host, port = parse_listen(http.listen)
    if (http.tls_cert_file is None) != (http.tls_key_file is None):
        missing = "tls_key_file" if http.tls_key_file is None else "tls_cert_file"
        checker.problem(f"http.{missing}",
                        "required key is missing: tls_cert_file and tls_key_file go together")
    shown_host = f"[{host}]" if ":" in host else host
    public_url = http.public_url or f"http://{shown_host}:{port}"
    return HttpSettings(host=host, port=port, public_url=public_url.rstrip("/"),
                        tls_cert_file=checker.path_of(http.tls_cert_file),
                        tls_key_file=checker.path_of(http.tls_key_file),
                        confirm_within=http.confirm_within, max_body=http.max_body,
                        client_timeout=http.client_timeout,
                        max_connections=http.max_connections,
                        public_rate=parse_rate(http.public_rate), trust_proxy=http.trust_proxy)


def secret(checker: Checker, path: str, env: str | None, file: str | None) -> SecretRef | None:
    """The reference for a secret written as ``<path>_env`` or ``<path>_file``."""
    if env is not None:
        return SecretRef(key_path=f"{path}_env", env=env)
    if file is not None:
        return SecretRef(key_path=f"{path}_file", file=checker.path_of(file))
    return None


def api_tokens(checker: Checker, api: schema.ApiSection) -> tuple[ApiToken, ...]:
    tokens: list[ApiToken] = []
    seen: set[str] = set()
    for index, token in enumerate(api.tokens):
        path = key_path("api.tokens", index)
        if token.name in seen:
            checker.problem(f"{path}.name", f"another token is already named {token.name!r}")
        seen.add(token.name)
        checker.one_of(path, {"token_env": token.token_env, "token_file": token.token_file,
                              "sha256": token.sha256})
        tokens.append(ApiToken(
            name=token.name, scopes=frozenset(token.scopes),
            secret=secret(checker, f"{path}.token", token.token_env, token.token_file),
            sha256=token.sha256.lower() if token.sha256 else None))
    return tuple(tokens)


def accounts(checker: Checker) -> tuple[dict[str, Account], set[str]]:
    """The valid accounts, and the keys of all declared ones (valid or not)."""
    table = checker.named("accounts")
    valid: dict[str, Account] = {}
    for key, data in table.items():
        path = key_path("accounts", key)
        section = checker.validate(_ACCOUNT.validate_python, data, path)
        if section is None:
            continue
        account = _account(checker, key, path, section)
        if account is not None:
            valid[key] = account
    return valid, set(table)


def _account(checker: Checker, key: str, path: str, section: Any) -> Account | None:
    ca_file = checker.path_of(section.ca_file)
    max_concurrent: int = (section.max_concurrent if section.max_concurrent is not None
                           else DEFAULT_MAX_CONCURRENT[section.provider])
    if isinstance(section, schema.GoogleAccountSection):
        service_account = secret(checker, f"{path}.service_account",
                                 section.service_account_env, section.service_account_file)
        checker.one_of(path, {"service_account_file": section.service_account_file,
                              "service_account_env": section.service_account_env})
        if service_account is None:
            return None
        return GoogleAccount(key=key, service_account=service_account, subject=section.subject,
                             api_url=section.api_url, ca_file=ca_file,
                             max_concurrent=max_concurrent)
    if isinstance(section, schema.MicrosoftAccountSection):
        certificate = section.certificate_file or section.certificate_thumbprint
        chosen = checker.one_of(path, {"client_secret_env": section.client_secret_env,
                                       "client_secret_file": section.client_secret_file,
                                       "certificate_file": certificate})
        if chosen == "certificate_file":
            for name in ("certificate_file", "certificate_thumbprint"):
                if getattr(section, name) is None:
                    checker.problem(f"{path}.{name}", "required key is missing: "
                                    "certificate_file and certificate_thumbprint go together")
        return MicrosoftAccount(
            key=key, tenant_id=section.tenant_id, client_id=section.client_id,
            client_secret=secret(checker, f"{path}.client_secret", section.client_secret_env,
                                 section.client_secret_file),
            certificate_file=checker.path_of(section.certificate_file),
            certificate_thumbprint=section.certificate_thumbprint,
            graph_url=section.graph_url.rstrip("/"),
            authority_url=section.authority_url.rstrip("/"),
            tentative_is_busy=section.tentative_is_busy, ca_file=ca_file,
            max_concurrent=max_concurrent)
    assert isinstance(section, schema.CaldavAccountSection)
    checker.one_of(path, {"password_env": section.password_env,
                          "password_file": section.password_file}, required=False)
    return CaldavAccount(
        key=key, url=section.url, username=section.username,
        password=secret(checker, f"{path}.password", section.password_env, section.password_file),
        sync_method=section.sync_method, ca_file=ca_file, max_concurrent=max_concurrent)


def check_push(checker: Checker, sync: schema.SyncSection, http: HttpSettings,
               valid_accounts: dict[str, Account]) -> None:
    """Google and Microsoft deliver push notifications to https URLs only."""
    pushing = [key for key, account in valid_accounts.items()
               if isinstance(account, GoogleAccount | MicrosoftAccount)]
    if sync.push and pushing and not http.public_url.startswith("https://"):
        checker.problem("sync.push", "push channels of Google and Microsoft accounts "
                        f"({', '.join(pushing)}) need an https http.public_url, not "
                        f"{http.public_url!r}; set one, or set push = false")


def webhooks(checker: Checker, entries: object, event_types: Collection[str]
             ) -> tuple[WebhookSettings, ...]:
    """``[[webhooks]]``: an https URL (http only to a loopback host), one
    secret reference, the events, and event types that exist."""
    if not isinstance(entries, list):
        checker.problem("webhooks", "must be an array of tables ([[webhooks]])")
        return ()
    found: list[WebhookSettings] = []
    for index, entry in enumerate(entries):
        path = key_path("webhooks", index)
        section = checker.validate(schema.WebhookSection.model_validate, entry, path)
        if section is None:
            continue
        problem = webhook_url_problem(section.url)
        if problem is not None:
            checker.problem(f"{path}.url", problem)
        checker.one_of(path, {"secret_env": section.secret_env,
                              "secret_file": section.secret_file})
        for name in section.event_types:
            if name not in event_types:
                checker.problem(f"{path}.event_types", f"there is no event type {name!r}")
        ref = secret(checker, f"{path}.secret", section.secret_env, section.secret_file)
        if ref is not None and problem is None:
            found.append(WebhookSettings(url=section.url, secret=ref,
                                         events=frozenset(section.events),
                                         event_types=frozenset(section.event_types)))
    return tuple(found)


def webhook_url_problem(url: str) -> str | None:
    parsed = urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return None
    if parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "::1", "localhost"):
        return None
    return (f"{url!r} must be an https URL (http only to a loopback address such as "
            "127.0.0.1)")


def smtp(checker: Checker, entry: object) -> SmtpSettings | None:
    """``[smtp]``: the server, its security, an optional login (a username
    and one password reference, together) and a From address."""
    section = checker.validate(schema.SmtpSection.model_validate, entry, "smtp")
    if section is None:
        return None
    checker.one_of("smtp", {"password_env": section.password_env,
                            "password_file": section.password_file}, required=False)
    password = secret(checker, "smtp.password", section.password_env, section.password_file)
    if password is not None and section.username is None:
        checker.problem("smtp.username", "required key is missing: a password needs a username")
    if section.username is not None and password is None:
        checker.problem("smtp.password_env",
                        "required key is missing: a username needs password_env or "
                        "password_file")
    _, address = parseaddr(section.from_)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        checker.problem("smtp.from", f"{section.from_!r} is not an email address such as "
                                     "\"Bookings <bookings@acme.example>\"")
    return SmtpSettings(host=section.host, port=section.port or SMTP_PORTS[section.security],
                        security=section.security, sender=section.from_,
                        username=section.username, password=password)
