"""``calpool link create``: the printed link books, its token is stored
only as a digest, options prefill the attendee and set the expiry, and bad
input is one sentence with exit 2."""

from __future__ import annotations

import io
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.cli import dispatch
from engine.core.model import Attendee
from engine.services.links import token_digest
from engine.store import Link, Store
from tests.support.config_builder import SiteConfig
from tests.support.sites import CALPOOL

CONFIG = (
    SiteConfig()
    .daemon(database="sqlite:///calpool.db")
    .http(public_url="https://book.example.com")
    .links(default_expiry="3d")
    .caldav_account("dav", url="https://dav.invalid/dav/")
    .calendar("alice", account="dav", id="alice/", kind="person", timezone="Europe/Berlin")
    .calendar("room-a", account="dav", id="rooms/a/", kind="room")
    .pool("rooms", members=["room-a"])
    .event_type("consult", title="Consultation with {attendee_name}", duration="30m",
                owner="alice", pools=["rooms"])
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return CONFIG.migrated(tmp_path).path


def link_create(config: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(["--config", str(config), "link", "create", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def stored(config: Path, token: str) -> Link:
    with Store.open(f"sqlite:///{config.parent / 'calpool.db'}") as store, \
            store.reader() as uow:
        link = uow.links.get(token_digest(token))
    assert link is not None
    return link


def test_prints_the_url_and_stores_only_the_digest(config: Path) -> None:
    before = datetime.now(UTC)

    code, out, err = link_create(config, "consult")

    assert (code, err) == (0, "")
    url, about = out.splitlines()
    prefix = "https://book.example.com/book/"
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert len(token) >= 43
    expires_at = stored(config, token).expires_at
    assert before + timedelta(days=3) <= expires_at <= datetime.now(UTC) + timedelta(days=3)
    local = expires_at.astimezone(ZoneInfo("Europe/Berlin")).isoformat()
    assert about == f"expires {local} (consult); id {token_digest(token)}"
    raw = b"".join(path.read_bytes() for path in config.parent.glob("calpool.db*"))
    assert token.encode() not in raw and token_digest(token).encode() in raw


def test_expires_and_a_prefilled_attendee(config: Path) -> None:
    code, out, _ = link_create(config, "consult", "--expires", "2h", "--name", " Ann Example ",
                               "--email", "ann@example.com")

    assert code == 0
    url, about = out.splitlines()
    link = stored(config, url.rsplit("/", 1)[1])
    assert link.attendee == Attendee("Ann Example", "ann@example.com")
    assert link.expires_at - link.created_at == timedelta(hours=2)
    assert "(consult, for Ann Example <ann@example.com>)" in about


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "unknown event type 'nope' (known: consult)"),
    (["consult", "--name", "Ann"], "give --name and --email together to prefill the attendee"),
])
def test_bad_input_is_one_sentence_and_exit_2(config: Path, argv: list[str],
                                              message: str) -> None:
    code, out, err = link_create(config, *argv)

    assert (code, out) == (2, "")
    assert err == f"calpool link create: {message}\n"


def test_an_address_that_is_not_one_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Checked by email-validator as the option is read (daemon.inputs)."""
    code, out, _ = link_create(config, "consult", "--name", "Ann", "--email", "not an address")

    assert (code, out) == (2, "")
    assert "argument --email: 'not an address' is not an email address" in capsys.readouterr().err


def test_as_a_process_on_an_unmigrated_database(tmp_path: Path) -> None:
    path = CONFIG.write(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("CALPOOL_CONFIG", "CALPOOL_TRACEBACK")}

    result = subprocess.run([str(CALPOOL), "link", "create", "consult", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, env=env, check=False)

    assert (result.returncode, result.stdout) == (1, "")
    assert "calpool db upgrade" in result.stderr and "Traceback" not in result.stderr
