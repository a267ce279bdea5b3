"""``accounts.<key>.max_concurrent``: requests in flight per account.  Unset,
it is the provider's default (Microsoft 4, Google 10, CalDAV 8); set, a
whole number of at least 1; anything else is one problem naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import ConfigError, load_config
from daemon.config.settings import DEFAULT_MAX_CONCURRENT

REPO = Path(__file__).resolve().parents[2]
DAV = 'provider = "caldav"\n'
ACCOUNTS = """
[accounts.google]
provider = "google"
service_account_env = "SA"
{google}
[accounts.microsoft]
provider = "microsoft"
tenant_id = "t"
client_id = "c"
client_secret_env = "S"
{microsoft}
[sync]
push = false
"""


def test_each_provider_has_its_default(write_config, edited) -> None:
    config = load_config(write_config(edited("", ACCOUNTS.format(google="", microsoft=""))))
    limits = {key: account.max_concurrent for key, account in config.accounts.items()}
    assert limits == {"dav": 8, "google": 10, "microsoft": 4}
    assert DEFAULT_MAX_CONCURRENT == {"microsoft": 4, "google": 10, "caldav": 8}


def test_a_set_value_wins_for_every_provider(write_config, edited) -> None:
    text = edited(DAV, DAV + "max_concurrent = 2\n") + ACCOUNTS.format(
        google="max_concurrent = 1", microsoft="max_concurrent = 16")
    config = load_config(write_config(text))
    limits = {key: account.max_concurrent for key, account in config.accounts.items()}
    assert limits == {"dav": 2, "google": 1, "microsoft": 16}


def test_the_example_config_shows_the_key() -> None:
    config = load_config(REPO / "config.example.toml")
    assert {key: account.max_concurrent for key, account in config.accounts.items()} == {
        "acme-google": 10, "acme-m365": 4, "office-dav": 8}
    assert "max_concurrent = 4" in (REPO / "config.example.toml").read_text()


@pytest.mark.parametrize(("value", "problem"), [
    ("0", "must be at least 1"),
    ("-3", "must be at least 1"),
    ('"4"', "must be an integer"),
    ("2.5", "must be an integer"),
    ("true", "must be an integer"),
])
def test_a_bad_value_is_one_problem_naming_the_key(problems_of, edited, value: str,
                                                   problem: str) -> None:
    assert problems_of(edited(DAV, DAV + f"max_concurrent = {value}\n")) == [
        f"accounts.dav.max_concurrent: {problem}"]


@settings(max_examples=25, deadline=None)
@given(value=st.integers(max_value=0))
def test_no_value_below_one_is_accepted(tmp_path_factory, value: int) -> None:
    from tests.daemon.conftest import BASE

    folder = tmp_path_factory.mktemp("limit")
    path = folder / "calpool.toml"
    path.write_text(BASE.replace(DAV, DAV + f"max_concurrent = {value}\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.problems == ["accounts.dav.max_concurrent: must be at least 1"]
