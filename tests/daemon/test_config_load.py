"""Loading whole files: file errors, many problems at once, defaults,
relative paths, conversion into the engine's model, secrets, the example."""

from __future__ import annotations

import os
import re
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, resolve_secret
from daemon.config.load import fingerprint_of
from daemon.config.settings import CaldavAccount, GoogleAccount, MicrosoftAccount, SecretRef
from engine.core.model import (
    AssignmentMethod,
    CalendarKind,
    LocalRange,
    ReportingCycle,
)

REPO = Path(__file__).resolve().parents[2]


def _one_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert len(raised.value.problems) == 1
    return raised.value.problems[0]


def test_missing_file_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert _one_problem(path) == f"{path}: no such config file"


def test_folder_instead_of_file(tmp_path: Path) -> None:
    assert _one_problem(tmp_path) == f"{tmp_path}: is a folder, not a config file"


def test_not_toml_names_line_and_column(write_config) -> None:
    path = write_config('[daemon]\ntimezone = "UTC"\nlog_level = verbose\n')
    assert _one_problem(path) == f"{path}: not valid TOML: Invalid value (at line 3, column 13)"


def test_not_utf8_names_line_and_column(write_config) -> None:
    path = write_config("[daemon]\n")
    path.write_bytes(b'[daemon]\ntimezone = "Europe/Z\xfcrich"\n')
    assert _one_problem(path) == f"{path}: not UTF-8 text (at line 2, column 21)"


def test_many_mistakes_are_all_reported(problems_of, base: str) -> None:
    text = (base.replace('timezone = "Europe/Berlin"', 'timezone = "Nowhere"')
            .replace('account = "dav"\nid = "bob/"', 'account = "dab"\nid = "bob/"')
            .replace('duration = "30m"', 'duration = "half an hour"')
            .replace('members = ["room-c"]', 'members = ["room-c", "alice"]')
            + '\n[sync]\npush = "no"\npoll = "5m"\n'
            + '[accounts.g]\nprovider = "google"\npassword = "x"\n')
    assert sorted(problems_of(text)) == sorted([
        "daemon.timezone: 'Nowhere' is not an IANA time zone like 'Europe/Berlin'",
        "calendars.bob.account: unknown account 'dab'",
        "event_types.consult.duration: 'half an hour' is not a duration like "
        '"90s", "15m", "2h", "7d" or "1h30m"',
        "pools.large.members[1]: 'alice' is a person; pool members are rooms",
        "sync.push: must be true or false",
        "sync.poll: unknown key",
        "accounts.g.password: secrets are never inline; use password_env or password_file",
    ])


def test_invalid_entry_is_not_reported_again_where_referenced(problems_of, edited) -> None:
    """Regression guard: an account with a typo must not also make every
    calendar on it an 'unknown account'."""
    text = edited('url = "https://dav.example/dav/"', 'url = 5')
    assert problems_of(text) == ["accounts.dav.url: must be a string"]


def test_defaults(write_config) -> None:
    path = write_config(
        '[accounts.dav]\nprovider = "caldav"\nurl = "https://dav.example/"\n'
        '[calendars.carol]\naccount = "dav"\nid = "carol/"\nkind = "person"\n'
        '[calendars.room]\naccount = "dav"\nid = "room/"\nkind = "room"\n'
        '[pools.rooms]\nmembers = ["room"]\n'
        '[event_types.chat]\ntitle = "Chat"\nduration = "45m"\nowner = "carol"\n'
    )
    config = load_config(path)
    assert config.path == path.resolve()
    assert config.daemon.database_url == f"sqlite:///{path.parent}/calpool.db"
    assert (config.daemon.timezone, config.daemon.log_format, config.daemon.log_level) == (
        "UTC", "text", "info")
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8740)
    assert config.http.public_url == "http://127.0.0.1:8740"
    assert config.http.confirm_within == timedelta(seconds=5)
    assert config.http.tls_cert_file is None
    sync = config.sync
    assert sync.push is True
    assert (sync.poll_interval, sync.safety_poll) == (timedelta(minutes=5), timedelta(hours=1))
    assert (sync.window_past, sync.window_future) == (timedelta(days=1), timedelta(days=90))
    assert (sync.stale_after, sync.reconcile_every) == (timedelta(minutes=15), timedelta(hours=24))
    assert sync.lease_ttl == timedelta(minutes=2)
    assert config.links.default_expiry == timedelta(days=7)
    assert config.retention.bookings == timedelta(days=400)
    assert config.retention.idempotency_keys == timedelta(hours=24)
    assert config.api_tokens == ()
    account = config.accounts["dav"]
    assert isinstance(account, CaldavAccount)
    assert (account.sync_method, account.password, account.username) == ("auto", None, None)
    carol = config.calendars["carol"]
    assert (carol.timezone, carol.working_hours, carol.name, carol.capacity) == (
        "UTC", None, "carol", None)
    pool = config.pools["rooms"]
    assert (pool.assignment, pool.reporting_cycle, pool.timezone) == (
        AssignmentMethod.LONGEST_IDLE, ReportingCycle.MONTH, "UTC")
    chat = config.event_types["chat"]
    assert chat.step == chat.duration == timedelta(minutes=45)
    assert (chat.with_, chat.pools, chat.description) == ((), (), "")
    assert chat.buffer_before == chat.buffer_after == chat.min_notice == timedelta(0)
    assert (chat.horizon, chat.max_per_day, chat.live_recheck) == (timedelta(days=60), 0, False)


def test_zones_default_to_daemon_timezone(write_config, base: str) -> None:
    config = load_config(write_config(base))
    assert config.calendars["alice"].timezone == "Europe/Berlin"
    assert config.pools["small"].timezone == "Europe/Berlin"


def test_relative_paths_are_relative_to_the_config_folder(write_config, base: str,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = (base.replace('timezone = "Europe/Berlin"',
                         'timezone = "Europe/Berlin"\ndatabase = "sqlite:///data/cal.db"')
            .replace('password_env = "DAV_PASSWORD"',
                     'password_file = "secrets/dav"\nca_file = "../ca.pem"')
            + '[http]\ntls_cert_file = "tls/c.crt"\ntls_key_file = "/abs/c.key"\n'
            + '[[api.tokens]]\nname = "web"\ntoken_file = "~/token"\nscopes = ["slots"]\n')
    path = write_config(text)
    monkeypatch.chdir(tmp_path)  # somewhere else than the config's folder
    config = load_config(Path("etc") / "calpool.toml")
    folder = path.parent
    assert config.daemon.database_url == f"sqlite:///{folder}/data/cal.db"
    account = config.accounts["dav"]
    assert isinstance(account, CaldavAccount)
    assert account.password == SecretRef(key_path="accounts.dav.password_file",
                                         file=folder / "secrets" / "dav")
    assert account.ca_file == folder / "../ca.pem"
    assert config.http.tls_cert_file == folder / "tls" / "c.crt"
    assert config.http.tls_key_file == Path("/abs/c.key")
    token_file = config.api_tokens[0].secret
    assert token_file is not None and token_file.file == Path.home() / "token"


@pytest.mark.parametrize("database", [
    "sqlite:////var/lib/calpool/calpool.db",
    "sqlite:///:memory:",
    "postgresql+psycopg://calpool:pw@db.example/calpool",
])
def test_absolute_and_server_databases_are_kept(write_config, edited, database: str) -> None:
    text = edited('timezone = "Europe/Berlin"',
                  f'timezone = "Europe/Berlin"\ndatabase = "{database}"')
    assert load_config(write_config(text)).daemon.database_url == database


def test_working_hours_become_the_engine_model(write_config, edited) -> None:
    text = edited('kind = "person"\n', 'kind = "person"\n'
                  'working_hours = { mon-fri = "09:00-12:30,13:30-17:00", sat = "10:00-24:00",'
                  ' sun = "" }\n'
                  'overrides = { "2026-12-24" = "", "2026-12-31" = "09:00-12:00" }\n')
    hours = load_config(write_config(text)).calendars["alice"].working_hours
    assert hours is not None
    split = (LocalRange(time(9), time(12, 30)), LocalRange(time(13, 30), time(17)))
    assert dict(hours.weekly) == {0: split, 1: split, 2: split, 3: split, 4: split,
                                  5: (LocalRange(time(10), time(0)),), 6: ()}
    assert hours.ranges_on(date(2026, 12, 24)) == ()
    assert hours.ranges_on(date(2026, 12, 31)) == (LocalRange(time(9), time(12)),)
    assert hours.ranges_on(date(2026, 12, 30)) == split  # a Wednesday


def test_overrides_alone_leave_other_days_open(write_config, edited) -> None:
    text = edited('kind = "person"\n', 'kind = "person"\noverrides = { "2026-12-24" = "" }\n')
    hours = load_config(write_config(text)).calendars["alice"].working_hours
    assert hours is not None
    assert hours.ranges_on(date(2026, 12, 24)) == ()
    assert hours.ranges_on(date(2026, 12, 23)) == (LocalRange(time(0), time(0)),)


def test_example_config_is_valid_and_complete() -> None:
    config = load_config(REPO / "config.example.toml")
    assert {type(account) for account in config.accounts.values()} == {
        GoogleAccount, MicrosoftAccount, CaldavAccount}
    assert config.calendars["alice"].kind is CalendarKind.PERSON
    assert config.calendars["room-rhine"].name == "Rhine (6 seats)"
    assert config.pools["berlin-rooms"].members == ("room-rhine", "room-spree", "room-havel")
    consultation = config.event_types["consultation"]
    assert (consultation.owner, consultation.with_, consultation.pools) == (
        "alice", ("bob",), ("berlin-rooms",))
    assert config.sources["alice"].subject == "alice@acme.example"
    assert config.account_of("room-spree").provider == "caldav"
    assert config.http.public_url == "https://calpool.example.com"


def test_resolve_secret_from_environment() -> None:
    ref = SecretRef(key_path="accounts.dav.password_env", env="DAV_PASSWORD")
    assert resolve_secret(ref, {"DAV_PASSWORD": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError) as unset:
        resolve_secret(ref, {})
    assert unset.value.problems == [
        "accounts.dav.password_env: environment variable DAV_PASSWORD is not set"]
    with pytest.raises(ConfigError) as empty:
        resolve_secret(ref, {"DAV_PASSWORD": ""})
    assert empty.value.problems == [
        "accounts.dav.password_env: environment variable DAV_PASSWORD is empty"]


def test_resolve_secret_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALPOOL_TEST_SECRET", "from-env")
    ref = SecretRef(key_path="api.tokens[0].token_env", env="CALPOOL_TEST_SECRET")
    assert resolve_secret(ref) == os.environ["CALPOOL_TEST_SECRET"]


def test_resolve_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "dav"
    secret_file.write_text("s3cret\n", encoding="utf-8")
    ref = SecretRef(key_path="accounts.dav.password_file", file=secret_file)
    assert resolve_secret(ref) == "s3cret"
    missing = SecretRef(key_path="accounts.dav.password_file", file=tmp_path / "none")
    with pytest.raises(ConfigError) as raised:
        resolve_secret(missing)
    assert raised.value.problems == [
        f"accounts.dav.password_file: cannot read {tmp_path / 'none'} (No such file or directory)"]


def test_check_config_does_not_need_the_secrets(write_config, base: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAV_PASSWORD", raising=False)
    account = load_config(write_config(base)).accounts["dav"]
    assert isinstance(account, CaldavAccount) and account.password is not None
    with pytest.raises(ConfigError):
        resolve_secret(account.password)


@pytest.mark.parametrize(("text", "place"), [
    ("a = [1,", "line 1, column 8"),
    ("a = [1,\n", "line 1, column 8"),
    ('[daemon]\ntimezone = "UTC', "line 2, column 16"),
    ("[daemon]\r\nlog_level = \r\n\r\n", None),  # tomllib names the line break itself
    ("[daemon", "line 1, column 8"),
    ('a = """abc\nmore\n', "line 2, column 5"),
    ("a = {b = 1,", "line 1, column 12"),
    ("x = 1\n[sync]\npoll_interval =   \n\n\n", None),
    ('a = "x', "line 1, column 7"),
    ("a = 1\nb = ", "line 2, column 4"),
])
def test_a_toml_error_at_the_end_names_the_last_line(write_config, text: str,
                                                     place: str | None) -> None:
    """Regression (issue 23): tomllib says only "at end of document" there.
    Every parse error names a line and a column."""
    path = write_config("")
    path.write_bytes(text.encode())
    problem = _one_problem(path)
    assert problem.startswith(f"{path}: not valid TOML: ")
    assert re.search(r"line \d+, column \d+\)$", problem), problem
    if place is not None:
        assert problem.endswith(f"(at end of document: {place})"), problem


def test_the_fingerprint_follows_the_settings_not_the_layout_nor_the_port() -> None:
    one = {"http": {"listen": "127.0.0.1:8740", "confirm_within": "5s"}, "sync": {"push": False}}
    same = {"sync": {"push": False}, "http": {"confirm_within": "5s", "listen": "0.0.0.0:9000"}}
    other = {"http": {"listen": "127.0.0.1:8740", "confirm_within": "0s"}, "sync": {"push": False}}
    assert fingerprint_of(one) == fingerprint_of(same)
    assert fingerprint_of(one) != fingerprint_of(other)
    assert len(fingerprint_of(one)) == 64
