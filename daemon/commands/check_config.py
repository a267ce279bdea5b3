"""``calpool check-config``: validate the config file and exit."""

from __future__ import annotations

from daemon.commands.invocation import Invocation
from daemon.config import ConfigError, resolve_secret
from daemon.config.settings import Config, SecretRef


def run(invocation: Invocation) -> int:
    """0 when valid.  Problems raise ``ConfigError``, which the CLI prints one
    a line and turns into exit 2."""
    config = invocation.config()
    counts = ", ".join(
        _count(len(items), noun)
        for items, noun in ((config.accounts, "account"), (config.calendars, "calendar"),
                            (config.pools, "pool"), (config.event_types, "event type"),
                            (config.api_tokens, "API token"))
    )
    print(f"{config.path}: valid ({counts})", file=invocation.out)
    # Secrets belong to the machine that runs the daemon, so their absence here
    # is not an error; saying so saves a failed start elsewhere.
    for ref in _secret_refs(config):
        try:
            resolve_secret(ref)
        except ConfigError as exc:
            print(f"note: {exc.problems[0]}; calpool run will need it", file=invocation.out)
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _secret_refs(config: Config) -> list[SecretRef]:
    refs = [token.secret for token in config.api_tokens]
    for account in config.accounts.values():
        if account.provider == "google":
            refs.append(account.service_account)
        elif account.provider == "microsoft":
            refs.append(account.client_secret)
        else:
            refs.append(account.password)
    return [ref for ref in refs if ref is not None]
