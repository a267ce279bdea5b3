"""A throwaway PostgreSQL server for tests and benchmarks.

``start_postgres()`` runs ``initdb`` into a fresh temporary folder and starts
``postgres`` listening only on a Unix socket in that folder (no TCP port, so
parallel runs never collide), with durability switched off for speed.  The
server binaries come from ``$CALPOOL_PG_BINDIR``, else the newest
``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package), else
``initdb`` on ``PATH``.  PostgreSQL refuses to run as root, so under root the
server runs as ``$CALPOOL_PG_OS_USER``, else the ``postgres`` system user,
else ``nobody``, owning the temporary folder.

Usage::

    with start_postgres() as server:
        url = server.create_database()        # postgresql+psycopg://calpool@/db_1?host=…
        ...

For pytest, import the fixtures into a conftest.py::

    from tests.support.postgres import postgres_database, postgres_server  # noqa: F401

``postgres_server`` (session scope) skips the tests that use it when the
binaries are missing locally, and fails them when ``CI=true``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
import pytest

__all__ = [
    "PostgresServer",
    "PostgresStartError",
    "database_name",
    "find_postgres_bindir",
    "postgres_database",
    "postgres_server",
    "start_postgres",
]

SUPERUSER = "calpool"
INSTALL_HINT = "PostgreSQL server binaries not found (apt-get install postgresql)"


class PostgresStartError(RuntimeError):
    """initdb or the server failed; the message carries their output."""


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or ``None``."""
    configured = os.environ.get("CALPOOL_PG_BINDIR")
    if configured:
        return Path(configured) if (Path(configured) / "initdb").exists() else None

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@dataclass
class PostgresServer:
    """A running server; ``url()`` names a database on it."""

    root: Path
    process: subprocess.Popen[bytes]
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit psycopg connection, for administration."""
        return psycopg.connect(
            host=str(self.socket_dir), user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create an empty database (or a copy of ``template``) and return its URL."""
        name = name or f"db_{os.getpid()}_{next(self._names)}"
        statement = f'CREATE DATABASE "{name}"'
        if template:
            statement += f' TEMPLATE "{template}"'
        with self.connect() as connection:
            connection.execute(statement.encode())
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    def stop(self) -> None:
        """Fast shutdown, then remove the folder; safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: PostgreSQL's "fast" shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def database_name(url: str) -> str:
    """The database a URL made by :meth:`PostgresServer.url` names."""
    return url.split("?", 1)[0].rsplit("/", 1)[1]


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("CALPOOL_PG_OS_USER"), "postgres", "nobody"):
        if name:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
    raise PostgresStartError("running as root and no unprivileged user to run PostgreSQL as")


def start_postgres(bindir: Path | None = None, *, startup_timeout: float = 60.0) -> PostgresServer:
    """initdb and start a server; raise :class:`PostgresStartError` on failure."""
    bindir = bindir or find_postgres_bindir()
    if bindir is None:
        raise PostgresStartError(INSTALL_HINT)
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="calpool-pg-"))
    uid = gid = None
    extra_groups: list[int] | None = None
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        uid, gid, extra_groups = user.pw_uid, user.pw_gid, []
    env = {**os.environ, "LC_ALL": "C", "HOME": str(root)}
    data = root / "data"
    initdb = subprocess.run(
        [
            str(bindir / "initdb"),
            "--pgdata", str(data), "--username", SUPERUSER, "--auth", "trust",
            "--encoding", "UTF8", "--no-locale", "--no-sync",
        ],
        cwd=root, env=env, capture_output=True, check=False,
        user=uid, group=gid, extra_groups=extra_groups,
    )  # fmt: skip
    if initdb.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        output = (initdb.stdout + initdb.stderr).decode(errors="replace")
        raise PostgresStartError(f"initdb failed: {output.strip()}")
    settings = {
        "listen_addresses": "",
        "unix_socket_directories": str(root),
        # A test server: losing it on a crash is fine, waiting for the disk is not.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    arguments = [str(bindir / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        arguments += ["-c", f"{name}={value}"]
    with open(root / "server.log", "wb") as log:  # the server keeps its own copy
        process = subprocess.Popen(
            arguments,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=uid,
            group=gid,
            extra_groups=extra_groups,
        )
    server = PostgresServer(root=root, process=process)
    atexit.register(server.stop)
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            with server.connect():
                return server
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = (root / "server.log").read_text(errors="replace")
                server.stop()
                raise PostgresStartError(f"PostgreSQL did not start: {output.strip()}") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole test session."""
    bindir = find_postgres_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{INSTALL_HINT}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(INSTALL_HINT)
    server = start_postgres(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(database_name(url))
