"""Fixtures for the operations tests: a site on Radicale (with a password),
the daemon as a process, and a socket that plays systemd's notify socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.wiring import App, build
from engine.core.model import ChangeSet, Interval, RemoteEvent
from tests.engine.services.conftest import fresh_calendar
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.config_builder import SiteConfig
from tests.support.sites import CALPOOL, run_calpool

DAV_USER, DAV_PASSWORD = "calpool", "dav-password-that-must-not-leak"
API_TOKEN = "api-token-that-must-not-leak-0123456789"
TOKEN_ENV = "CALPOOL_OPS_TEST_TOKEN"
PASSWORD_ENV = "CALPOOL_OPS_TEST_DAV_PASSWORD"
# Loopback must never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="package")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("ops-radicale"),
                            users={DAV_USER: DAV_PASSWORD})
    yield server
    server.stop()


@dataclass
class Site:
    """A config on disk whose calendars live on Radicale, migrated."""

    folder: Path
    config: Path
    calendars: dict[str, str]
    port: int
    database: Path
    home: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write(self, *, port: int | None = None, event_types: tuple[str, ...] = (),
              daemon: Mapping[str, str] | None = None) -> None:
        """(Re)write the config: ``event_types`` adds event types beside
        ``consultation``; ``daemon`` adds keys to ``[daemon]``."""
        config = (
            SiteConfig()
            .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin", **(daemon or {}))
            .http(listen=f"127.0.0.1:{port or self.port}")
            .sync(window_future="120d")
            .api_token("ops", token_env=TOKEN_ENV, scopes=["slots", "book"])
            .caldav_account("dav", url=self.home, username=DAV_USER, password_env=PASSWORD_ENV)
            .calendars(self.calendars, persons={"alice"})
            .pool("rooms", members=["room-a", "room-b"])
        )
        for key in ("consultation", *event_types):
            config.event_type(key, title=f"{key} with {{attendee_name}}", duration="30m",
                              owner="alice", pools=["rooms"], horizon="100d")
        self.config.write_text(config.text(), encoding="utf-8")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CALPOOL_CONFIG", "CALPOOL_TRACEBACK", "NOTIFY_SOCKET",
                        "WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update({TOKEN_ENV: API_TOKEN, PASSWORD_ENV: DAV_PASSWORD}, **extra)
    return env


def calpool(site: Site, *argv: str, timeout: float = 90,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_calpool(site.config, *argv, timeout=timeout, env=env or environment())


@pytest.fixture
def site(tmp_path: Path, radicale: Server) -> Site:
    calendars = {key: fresh_calendar(radicale, key) for key in ("alice", "room-a", "room-b")}
    made = Site(tmp_path, tmp_path / "calpool.toml", calendars, free_port(),
                tmp_path / "calpool.db", radicale.home)
    made.write()
    upgraded = calpool(made, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    return made


class NotifySocket:
    """A datagram socket where the daemon sends what it tells systemd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self.received: list[dict[str, str]] = []

    def next_with(self, key: str, timeout: float = 30) -> dict[str, str]:
        """The next message that sets ``key`` (earlier ones are kept in ``received``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}= within {timeout}s; got {self.received}")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            message = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.received.append(message)
            if key in message:
                return message

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)


StartDaemon = Callable[..., Running]


@pytest.fixture
def start_daemon(site: Site) -> Iterator[StartDaemon]:
    started: list[Running] = []

    def start(**env: str) -> Running:
        log_path = site.folder / f"daemon-{len(started)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(CALPOOL), "--config", str(site.config), "run"],
                stdout=log_file, stderr=subprocess.STDOUT, env=environment(**env),
            )
        running = Running(process, log_path)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)


def get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        body, status, kind = error.read(), error.code, error.headers.get("Content-Type", "")
    except urllib.error.URLError as error:  # nothing listens (yet)
        return 0, str(error.reason)
    return status, json.loads(body) if "json" in kind else body.decode()


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)



# ---- in-process: an App built from a config, over SQLite ------------------------------------

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

def app_config(token_env: str = TOKEN_ENV) -> SiteConfig:
    """The in-process app's config (its API token read from ``token_env``);
    a test that needs a variant changes the builder it gets."""
    return (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin")
        .sync(stale_after="15m")
        .retention(bookings="30d", idempotency_keys="24h")
        .api_token("ops", token_env=token_env, scopes=["slots", "book"])
        .caldav_account("dav", url="https://dav.invalid/dav/")
        .calendars({"alice": "alice@example.com", "room-a": "rooms/a/", "room-b": "rooms/b/"},
                   persons={"alice"})
        .pool("rooms", members=["room-a", "room-b"])
        .event_type("consult", title="Consultation", duration="30m", owner="alice",
                    pools=["rooms"])
    )


@dataclass
class Built:
    """An ``App`` built by ``daemon.wiring.build`` and the clock it reads."""

    app: App
    path: Path
    clock: list[datetime]

    def synced(self, calendar: str, at: datetime) -> None:
        window = Interval(at - timedelta(days=1), at + timedelta(days=90))
        event = RemoteEvent(source="ev", uid="uid-ev", start=at + timedelta(hours=1),
                            end=at + timedelta(hours=2))
        with self.app.store.unit_of_work() as uow:
            uow.events.apply_changes(
                calendar, ChangeSet(cursor="c", objects={"ev": (event,)}, full=True), window, at)
            uow.commit()

    def failed(self, calendar: str, at: datetime, error: str = "503 from the server") -> None:
        with self.app.store.unit_of_work() as uow:
            uow.calendars.record_failure(calendar, at, error)
            uow.commit()


@pytest.fixture
def build_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Built]]:
    monkeypatch.setenv(TOKEN_ENV, API_TOKEN)
    made: list[Built] = []

    def make(site_config: SiteConfig | None = None) -> Built:
        """An app built over ``site_config`` (default :func:`app_config`)."""
        folder = tmp_path / f"app-{len(made)}"
        folder.mkdir()
        config = (site_config or app_config()).migrated(folder)
        clock = [NOW]
        built = Built(build(config, clock=lambda: clock[0]), config.path, clock)
        made.append(built)
        return built

    yield make
    for built in made:
        built.app.close()
