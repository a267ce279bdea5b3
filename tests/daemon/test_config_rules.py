"""One bad config per rule: each must be reported as exactly one problem,
naming the key path.  ``old`` is a snippet of the base config replaced by
``new``; an empty ``old`` appends ``new``."""

from __future__ import annotations

import pytest

DURATION_HINT = 'like "90s", "15m", "2h", "7d" or "1h30m"'
ALICE = '[calendars.alice]\naccount = "dav"\nid = "alice/"\nkind = "person"\n'
DAV = '[accounts.dav]\nprovider = "caldav"\nurl = "https://dav.example/dav/"\n'
EVENT = 'owner = "alice"\npools = ["small"]\n'

CASES = [
    # --- unknown keys, types, enumerations
    ("unknown_section", "", "[extras]\nx = 1\n", "extras: unknown key"),
    ("unknown_key", "", '[sync]\npoll = "5m"\n', "sync.poll: unknown key"),
    ("missing_required", 'kind = "person"\n', "", "calendars.alice.kind: required key is missing"),
    ("wrong_kind", 'id = "alice/"\nkind = "person"', 'id = "alice/"\nkind = "desk"',
     "calendars.alice.kind: must be one of 'person' or 'room', not 'desk'"),
    ("string_for_integer", 'id = "rooms/a/"\n', 'id = "rooms/a/"\ncapacity = "6"\n',
     "calendars.room-a.capacity: must be an integer"),
    ("capacity_zero", 'id = "rooms/a/"\n', 'id = "rooms/a/"\ncapacity = 0\n',
     "calendars.room-a.capacity: must be at least 1"),
    ("string_for_bool", "", '[sync]\npush = "yes"\n', "sync.push: must be true or false"),
    ("section_not_table", "[daemon]", 'retention = "7d"\n[daemon]',
     "retention: must be a table"),
    ("bad_assignment", 'members = ["room-c"]', 'members = ["room-c"]\nassignment = "fair"',
     "pools.large.assignment: must be one of 'longest_idle', 'priority', 'round_robin', "
     "'least_booked' or 'random', not 'fair'"),
    ("bad_key", "[calendars.bob]", '[calendars."bob smith"]',
     "calendars.bob smith: a key is letters, digits, '-', '_' and '.', starting with a letter "
     "or digit"),
    ("empty_pool", 'members = ["room-c"]', "members = []",
     "pools.large.members: must not be empty"),
    ("bad_template", 'title = "Consultation"', 'title = "Consultation {attendee_name"',
     "event_types.consult.title: 'Consultation {attendee_name' is not a valid template: "
     "expected '}' before end of string"),
    # --- durations
    ("bad_duration", "", '[sync]\npoll_interval = "5 minutes"\n',
     f"sync.poll_interval: '5 minutes' is not a duration {DURATION_HINT}"),
    ("duration_not_string", "", "[sync]\nwindow_past = 3\n",
     f"sync.window_past: must be a duration string {DURATION_HINT}"),
    ("zero_duration", 'duration = "30m"', 'duration = "0s"',
     "event_types.consult.duration: must be longer than 0s"),
    ("zero_step", 'duration = "30m"', 'duration = "30m"\nstep = "0m"',
     "event_types.consult.step: must be longer than 0s"),
    ("negative_max_per_day", 'duration = "30m"', 'duration = "30m"\nmax_per_day = -1',
     "event_types.consult.max_per_day: must be at least 0"),
    # --- working hours and overrides
    ("bad_day", 'kind = "person"\n',
     'kind = "person"\nworking_hours = { mon-fry = "09:00-17:00" }\n',
     "calendars.alice.working_hours.mon-fry: 'mon-fry' is not a day or day range like "
     "'mon-fri' or 'sat'"),
    ("backwards_days", 'kind = "person"\n', 'kind = "person"\nworking_hours = { fri-mon = "" }\n',
     "calendars.alice.working_hours.fri-mon: day range 'fri-mon' runs backwards; write the days "
     "from mon to sun"),
    ("bad_time", 'kind = "person"\n', 'kind = "person"\nworking_hours = { mon-fri = "9-17" }\n',
     "calendars.alice.working_hours.mon-fri: '9' is not a time like '09:00'"),
    ("hour_25", 'kind = "person"\n', 'kind = "person"\nworking_hours = { sat = "09:00-25:00" }\n',
     "calendars.alice.working_hours.sat: '25:00' is not a time of day"),
    ("range_backwards", 'kind = "person"\n',
     'kind = "person"\nworking_hours = { mon = "17:00-09:00" }\n',
     "calendars.alice.working_hours.mon: '17:00-09:00' ends before it starts"),
    ("ranges_overlap", 'kind = "person"\n',
     'kind = "person"\nworking_hours = { mon = "09:00-12:00,11:00-13:00" }\n',
     "calendars.alice.working_hours.mon: '11:00-13:00' overlaps or precedes the range before it"),
    ("day_twice", 'kind = "person"\n',
     'kind = "person"\nworking_hours = { mon-fri = "09:00-17:00", fri = "09:00-12:00" }\n',
     "calendars.alice.working_hours.fri: fri is already given by 'mon-fri'"),
    ("bad_override_date", 'kind = "person"\n',
     'kind = "person"\noverrides = { "2026-13-01" = "" }\n',
     "calendars.alice.overrides.2026-13-01: '2026-13-01' is not a date like '2026-12-24'"),
    ("bad_override_hours", 'kind = "person"\n',
     'kind = "person"\noverrides = { "2026-12-31" = "09:00" }\n',
     "calendars.alice.overrides.2026-12-31: '09:00' is not a time range like '09:00-17:00'"),
    ("hours_not_string", 'kind = "person"\n',
     'kind = "person"\nworking_hours = { mon = 9 }\n',
     "calendars.alice.working_hours.mon: must be a string"),
    # --- references
    ("unknown_account", 'account = "dav"\nid = "alice/"', 'account = "dav2"\nid = "alice/"',
     "calendars.alice.account: unknown account 'dav2'"),
    ("unknown_member", 'members = ["room-a", "room-b"]', 'members = ["room-a", "room-x"]',
     "pools.small.members[1]: unknown calendar 'room-x'"),
    ("unknown_pool", 'pools = ["small"]', 'pools = ["tiny"]',
     "event_types.consult.pools[0]: unknown pool 'tiny'"),
    ("unknown_owner", 'owner = "alice"', 'owner = "carol"',
     "event_types.consult.owner: unknown calendar 'carol'"),
    ("unknown_with", EVENT, EVENT + 'with = ["bob", "dave"]\n',
     "event_types.consult.with[1]: unknown calendar 'dave'"),
    # --- roles
    ("owner_is_room", 'owner = "alice"', 'owner = "room-c"',
     "event_types.consult.owner: 'room-c' is a room; the owner and the people in 'with' are "
     "persons (rooms come from pools)"),
    ("with_is_room", EVENT, EVENT + 'with = ["room-c"]\n',
     "event_types.consult.with[0]: 'room-c' is a room; the owner and the people in 'with' are "
     "persons (rooms come from pools)"),
    ("member_is_person", 'members = ["room-c"]', 'members = ["room-c", "bob"]',
     "pools.large.members[1]: 'bob' is a person; pool members are rooms"),
    ("member_twice", 'members = ["room-c"]', 'members = ["room-c", "room-c"]',
     "pools.large.members[1]: 'room-c' is listed twice"),
    ("owner_in_with", EVENT, EVENT + 'with = ["alice"]\n',
     "event_types.consult.with[0]: 'alice' is already a participant"),
    ("pools_overlap", 'members = ["room-c"]', 'members = ["room-c", "room-b"]\n'
     .replace("\n", "") + '\n[event_types.panel]\ntitle = "Panel"\nduration = "1h"\n'
     'owner = "bob"\npools = ["small", "large"]',
     "event_types.panel.pools[1]: pool 'large' shares 'room-b' with pool 'small'; the pools of "
     "one event type are disjoint"),
    ("pool_twice", 'pools = ["small"]', 'pools = ["small", "small"]',
     "event_types.consult.pools[1]: 'small' is listed twice"),
    # --- horizon and window
    ("horizon_past_window", 'duration = "30m"', 'duration = "30m"\nhorizon = "120d"',
     "event_types.consult.horizon: 120d reaches past sync.window_future (90d), so slots at its "
     "end would be offered from data never synced"),
    ("default_horizon_past_window", "", '[sync]\nwindow_future = "30d"\n',
     "event_types.consult.horizon: 60d reaches past sync.window_future (30d), so slots at its "
     "end would be offered from data never synced"),
    # --- secrets
    ("inline_password", 'password_env = "DAV_PASSWORD"', 'password = "hunter2"',
     "accounts.dav.password: secrets are never inline; use password_env or password_file"),
    ("inline_client_secret", "",
     '[accounts.ms]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
     'client_secret = "s3cret"\n',
     "accounts.ms.client_secret: secrets are never inline; use client_secret_env or "
     "client_secret_file"),
    ("inline_api_token", "", '[[api.tokens]]\nname = "web"\ntoken = "abc"\nscopes = ["slots"]\n',
     "api.tokens[0].token: secrets are never inline; use token_env, token_file or sha256"),
    ("inline_service_account", "",
     '[accounts.g]\nprovider = "google"\nservice_account = "{}"\n[sync]\npush = false\n',
     "accounts.g.service_account: secrets are never inline; use service_account_file or "
     "service_account_env"),
    ("secret_twice", 'password_env = "DAV_PASSWORD"',
     'password_env = "DAV_PASSWORD"\npassword_file = "dav.secret"',
     "accounts.dav.password_file: give only one of password_env or password_file, not "
     "password_env as well"),
    ("google_without_key", "", '[accounts.g]\nprovider = "google"\n[sync]\npush = false\n',
     "accounts.g: needs one of service_account_file or service_account_env"),
    ("microsoft_without_credentials", "",
     '[accounts.ms]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
     '[sync]\npush = false\n',
     "accounts.ms: needs one of client_secret_env, client_secret_file or certificate_file"),
    ("certificate_without_thumbprint", "",
     '[accounts.ms]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
     'certificate_file = "ms.pem"\n[sync]\npush = false\n',
     "accounts.ms.certificate_thumbprint: required key is missing: certificate_file and "
     "certificate_thumbprint go together"),
    ("token_without_secret", "", '[[api.tokens]]\nname = "web"\nscopes = ["slots"]\n',
     "api.tokens[0]: needs one of token_env, token_file or sha256"),
    ("bad_sha256", "", '[[api.tokens]]\nname = "web"\nsha256 = "abc"\nscopes = ["slots"]\n',
     "api.tokens[0].sha256: 'abc' is not a sha256 digest (64 hex digits)"),
    ("bad_scope", "", '[[api.tokens]]\nname = "web"\ntoken_env = "T"\nscopes = ["write"]\n',
     "api.tokens[0].scopes[0]: must be one of 'slots', 'book' or 'admin', not 'write'"),
    ("duplicate_token_name", "",
     '[[api.tokens]]\nname = "web"\ntoken_env = "A"\nscopes = ["slots"]\n'
     '[[api.tokens]]\nname = "web"\ntoken_env = "B"\nscopes = ["book"]\n',
     "api.tokens[1].name: another token is already named 'web'"),
    # --- providers and push
    ("unknown_provider", 'provider = "caldav"', 'provider = "exchange"',
     "accounts.dav.provider: unknown provider 'exchange' (caldav, google or microsoft)"),
    ("missing_provider", 'provider = "caldav"\n', "",
     "accounts.dav.provider: required key is missing (caldav, google or microsoft)"),
    ("caldav_url_not_http", 'url = "https://dav.example/dav/"', 'url = "dav.example/dav/"',
     "accounts.dav.url: 'dav.example/dav/' is not an http or https URL"),
    ("bad_sync_method", 'password_env = "DAV_PASSWORD"',
     'password_env = "DAV_PASSWORD"\nsync_method = "ctag"',
     "accounts.dav.sync_method: must be one of 'auto', 'sync-collection' or 'etag', not 'ctag'"),
    ("subject_on_caldav", 'id = "alice/"', 'id = "alice/"\nsubject = "alice@example.com"',
     "calendars.alice.subject: only Google accounts act as a subject; 'dav' is a caldav account"),
    ("push_without_https", "",
     '[accounts.g]\nprovider = "google"\nservice_account_env = "SA"\n'
     '[http]\npublic_url = "http://calpool.example.com"\n',
     "sync.push: push channels of Google and Microsoft accounts (g) need an https "
     "http.public_url, not 'http://calpool.example.com'; set one, or set push = false"),
    ("push_with_default_public_url", "",
     '[accounts.ms]\nprovider = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
     'client_secret_env = "S"\n',
     "sync.push: push channels of Google and Microsoft accounts (ms) need an https "
     "http.public_url, not 'http://127.0.0.1:8740'; set one, or set push = false"),
    # --- zones
    ("bad_daemon_zone", 'timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"',
     "daemon.timezone: 'Mars/Olympus' is not an IANA time zone like 'Europe/Berlin'"),
    ("bad_calendar_zone", 'id = "bob/"', 'id = "bob/"\ntimezone = "CEST"',
     "calendars.bob.timezone: 'CEST' is not an IANA time zone like 'Europe/Berlin'"),
    ("bad_pool_zone", 'members = ["room-c"]', 'members = ["room-c"]\ntimezone = "Berlin"',
     "pools.large.timezone: 'Berlin' is not an IANA time zone like 'Europe/Berlin'"),
    # --- daemon and http
    ("bad_database_url", 'timezone = "Europe/Berlin"',
     'timezone = "Europe/Berlin"\ndatabase = "calpool.db"',
     "daemon.database: 'calpool.db' is not a database URL like 'sqlite:///calpool.db' or "
     "'postgresql+psycopg://user@host/calpool'"),
    ("unsupported_database", 'timezone = "Europe/Berlin"',
     'timezone = "Europe/Berlin"\ndatabase = "mysql://db/calpool"',
     "daemon.database: 'mysql://db/calpool': only sqlite and postgresql databases are supported"),
    ("postgres_driver", 'timezone = "Europe/Berlin"',
     'timezone = "Europe/Berlin"\ndatabase = "postgresql+psycopg2://db/calpool"',
     "daemon.database: 'postgresql+psycopg2': calpool talks to PostgreSQL through psycopg 3; "
     "write postgresql+psycopg://…"),
    ("bad_listen", "", '[http]\nlisten = "localhost"\n',
     "http.listen: 'localhost' is not an address like '127.0.0.1:8740'"),
    ("tls_half", "", '[http]\ntls_cert_file = "tls.crt"\n',
     "http.tls_key_file: required key is missing: tls_cert_file and tls_key_file go together"),
    ("public_url_not_http", "", '[http]\npublic_url = "calpool.example.com"\n',
     "http.public_url: 'calpool.example.com' is not an http or https URL"),
    ("bad_log_format", 'timezone = "Europe/Berlin"',
     'timezone = "Europe/Berlin"\nlog_format = "xml"',
     "daemon.log_format: must be one of 'text' or 'json', not 'xml'"),
    ("bad_public_rate", "", '[http]\npublic_rate = "twenty"\n',
     "http.public_rate: 'twenty' is not a rate like '20/h' or '5/15m'"),
    ("string_for_trust_proxy", "", '[http]\ntrust_proxy = "yes"\n',
     "http.trust_proxy: must be true or false"),
    ("bad_change_notice", 'title = "Consultation"',
     'title = "Consultation"\nchange_notice = "1 hour"',
     f"event_types.consult.change_notice: '1 hour' is not a duration {DURATION_HINT}"),
    ("string_for_public", 'title = "Consultation"', 'title = "Consultation"\npublic = "yes"',
     "event_types.consult.public: must be true or false"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_config_names_the_key(problems_of, edited, old: str, new: str, expected: str) -> None:
    assert problems_of(edited(old, new)) == [expected]


def test_case_names_are_unique() -> None:
    names = [case[0] for case in CASES]
    assert len(names) == len(set(names))
