"""``[[webhooks]]`` in the config: what is accepted and what each mistake says."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from daemon.config import load_config
from tests.daemon.conftest import WriteConfig

HOOK = '''
[[webhooks]]
url = "https://crm.example.com/hooks/calpool"
secret_env = "CALPOOL_WEBHOOK_CRM"
events = ["booking.created", "booking.cancelled"]
'''


def test_a_webhook_entry_is_read(base: str, write_config: WriteConfig) -> None:
    config = load_config(write_config(base + HOOK + 'event_types = ["consult"]\n'))
    (hook,) = config.webhooks
    assert hook.url == "https://crm.example.com/hooks/calpool"
    assert hook.events == {"booking.created", "booking.cancelled"}
    assert hook.event_types == {"consult"}
    assert hook.secret.env == "CALPOOL_WEBHOOK_CRM"


def test_no_webhooks_is_the_default(base: str, write_config: WriteConfig) -> None:
    assert load_config(write_config(base)).webhooks == ()


def test_http_is_accepted_to_loopback_only(base: str, write_config: WriteConfig) -> None:
    local = HOOK.replace("https://crm.example.com", "http://127.0.0.1:9000")
    assert load_config(write_config(base + local)).webhooks[0].url.startswith("http://127.")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("https://crm.example.com", "http://crm.example.com",
     "webhooks[0].url: 'http://crm.example.com/hooks/calpool' must be an https URL"),
    ("https://crm.example.com/hooks/calpool", "crm",
     "webhooks[0].url: 'crm' must be an https URL"),
    ('"booking.created", ', '"booking.made", ',
     "webhooks[0].events[0]: must be one of"),
    ('events = ["booking.created", "booking.cancelled"]', "events = []",
     "webhooks[0].events: must not be empty"),
    ('secret_env = "CALPOOL_WEBHOOK_CRM"', 'secret = "whsec_x"',
     "webhooks[0].secret: secrets are never inline"),
    ('secret_env = "CALPOOL_WEBHOOK_CRM"', 'secret_env = "A"\nsecret_file = "b"',
     "webhooks[0].secret_file: give only one of"),
    ('events = [', 'event_types = ["nope"]\nevents = [',
     "webhooks[0].event_types: there is no event type 'nope'"),
])
def test_mistakes_name_the_key(base: str, problems_of: Callable[[str], list[str]], old: str,
                               new: str, expected: str) -> None:
    assert old in HOOK
    problems = problems_of(base + HOOK.replace(old, new))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_webhooks_must_be_an_array_of_tables(base: str, problems_of: Callable[[str], list[str]]
                                             ) -> None:
    assert problems_of('webhooks = "https://x.example"\n' + base) == [
        "webhooks: must be an array of tables ([[webhooks]])"]
