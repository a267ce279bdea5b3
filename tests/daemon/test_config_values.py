"""Duration strings, listen addresses and day ranges, on their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import load_config
from daemon.config.durations import format_duration, parse_duration, parse_rate
from daemon.config.values import parse_days, parse_listen


@pytest.mark.parametrize(("text", "expected"), [
    ("0s", timedelta(0)),
    ("90s", timedelta(seconds=90)),
    ("15m", timedelta(minutes=15)),
    ("2h", timedelta(hours=2)),
    ("7d", timedelta(days=7)),
    ("1h30m", timedelta(minutes=90)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
])
def test_duration_strings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "-5m", "1.5h", "30m1h", "5 m", "1w", "2hh",
                                  "99999999999d"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**8))
def test_format_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(("text", "expected"), [
    ("mon-fri", (0, 1, 2, 3, 4)), ("sat", (5,)), ("mon-sun", tuple(range(7))),
    ("sat-sun", (5, 6)), ("Tue", (1,)),
])
def test_day_specs(text: str, expected: tuple[int, ...]) -> None:
    assert parse_days(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8740", ("127.0.0.1", 8740)), ("[::1]:80", ("::1", 80)),
    (":8740", ("0.0.0.0", 8740)), ("calpool.internal:443", ("calpool.internal", 443)),
])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8740", "host:", "host:0", "host:65536", "::1:80", "h:x"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_ipv6_listen_gives_a_bracketed_default_public_url(write_config, base: str) -> None:
    config = load_config(write_config(base + '\n[http]\nlisten = "[::1]:9000"\n'))
    assert config.http.public_url == "http://[::1]:9000"


@pytest.mark.parametrize(("text", "expected"), [
    ("20/h", (20, timedelta(hours=1))),
    ("5/15m", (5, timedelta(minutes=15))),
    (" 1/d ", (1, timedelta(days=1))),
])
def test_rate_strings(text: str, expected: tuple[int, timedelta]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["20", "0/h", "x/h", "20/", "20/week", "-1/h", "20/0s"])
def test_bad_rate_strings(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)
