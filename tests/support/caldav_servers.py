"""Real CalDAV servers on loopback, for tests and the demo.

Two servers, started as subprocesses of the interpreter running the tests:

- Radicale (``python -m radicale --config FILE``), with ``[auth] type =
  none`` by default or htpasswd (plain) when ``users`` are given, storing in
  a folder of the caller's temporary directory;
- Xandikos (``xandikos serve --defaults -d DIR -l 127.0.0.1 -p PORT``).

Usage::

    server = start_radicale(tmp_path)
    url = server.make_calendar("rooms/spree")   # MKCALENDAR, returns its URL
    ...
    server.stop()

Both return a :class:`Server`; ``with start_xandikos(tmp) as server:`` works
too.  A server that does not answer within ``startup_timeout`` seconds is
stopped and :class:`ServerStartError` names its output.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["Server", "ServerStartError", "free_port", "start_radicale", "start_xandikos"]


class ServerStartError(RuntimeError):
    """The server process exited or never answered."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The environment may point at a proxy; loopback must never go through one.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    """A running server: ``url`` is its root (ending in ``/``); ``home`` is the
    collection under which tests create calendars (ending in ``/``)."""

    kind: str
    url: str
    home: str
    process: subprocess.Popen[bytes]
    log_path: Path
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Terminate the process (and wait for it); safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def request(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP request (with the server's credentials, if any);
        returns ``(status, headers, body)`` and never raises on a status."""
        all_headers = dict(headers or {})
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
        req = urllib.request.Request(url, data=body or None, method=method, headers=all_headers)
        opener = _NO_PROXY
        if self.ca_file is not None:
            context = ssl.create_default_context(cafile=self.ca_file)
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
            )
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def make_calendar(self, name: str) -> str:
        """Create the calendar ``name`` (a path below ``home``, parents
        created as plain collections; Radicale allows no parents) and return
        its URL."""
        parts = [part for part in name.strip("/").split("/") if part]
        url = self.home
        for parent in parts[:-1]:
            url = f"{url}{parent}/"
            status, _, _ = self.request("MKCOL", url)
            if status not in (201, 405):  # 405: it exists already
                raise ServerStartError(f"MKCOL {url} answered {status}")
        url = f"{url}{parts[-1]}/"
        status, _, body = self.request("MKCALENDAR", url)
        if status != 201:
            raise ServerStartError(f"MKCALENDAR {url} answered {status}: {body[:200]!r}")
        return url


def _wait_until_up(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            status, _, _ = server.request("PROPFIND", server.home, headers={"Depth": "0"})
            if status < 500:
                return
        time.sleep(0.05)
    server.stop()
    output = server.log_path.read_text(errors="replace")[-2000:]
    raise ServerStartError(f"{server.kind} did not come up at {server.url}:\n{output}")


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    log = log_path.open("wb")
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()  # the child holds its own copy of the descriptor


def start_radicale(
    tmpdir: Path | str,
    *,
    users: dict[str, str] | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    port: int | None = None,
    startup_timeout: float = 20.0,
) -> Server:
    """Start Radicale with its storage in ``tmpdir/radicale``.

    Without ``users``: ``[auth] type = none`` and calendars live under
    ``/calpool/``.  With ``users`` (name → password): htpasswd (plain) auth,
    calendars under ``/<first user>/``, and :meth:`Server.request` sends the
    first user's credentials.  ``tls`` = (certificate chain, key, CA file)
    serves HTTPS; the CA file is what clients must trust.
    """
    root = Path(tmpdir) / "radicale"
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    auth = "[auth]\ntype = none\n"
    username = password = None
    if users:
        htpasswd = root / "htpasswd"
        htpasswd.write_text("".join(f"{name}:{pw}\n" for name, pw in users.items()))
        auth = (
            "[auth]\ntype = htpasswd\n"
            f"htpasswd_filename = {htpasswd}\nhtpasswd_encryption = plain\n"
            # Radicale delays failed logins by default; tests want the 401 now.
            "delay = 0\n"
        )
        username, password = next(iter(users.items()))
    server_section = f"[server]\nhosts = 127.0.0.1:{port}\n"
    if tls:
        server_section += f"ssl = True\ncertificate = {tls[0]}\nkey = {tls[1]}\n"
    config = root / "config"
    config.write_text(
        f"{server_section}\n{auth}\n"
        "[rights]\ntype = authenticated\n\n"
        f"[storage]\nfilesystem_folder = {root / 'collections'}\n\n"
        "[logging]\nlevel = warning\n\n"
        "[web]\ntype = none\n"
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
    process = _spawn([sys.executable, "-m", "radicale", "--config", str(config)], root / "log")
    # Radicale keeps calendars exactly two levels deep (/<user>/<calendar>/).
    home = f"{url}{username or 'calpool'}/"
    ca_file = str(tls[2]) if tls else None
    server = Server("radicale", url, home, process, root / "log", username, password, ca_file)
    _wait_until_up(server, startup_timeout)
    if not users:
        server.request("MKCOL", home)
    return server


def start_xandikos(
    tmpdir: Path | str, *, port: int | None = None, startup_timeout: float = 20.0
) -> Server:
    """Start Xandikos with ``--defaults`` serving ``tmpdir/xandikos``;
    calendars live under ``/user/calendars/``."""
    root = Path(tmpdir) / "xandikos"
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    executable = shutil.which("xandikos", path=str(Path(sys.executable).parent)) or "xandikos"
    args = [executable, "serve", "--defaults", "-d", str(root / "data")]
    args += ["-l", "127.0.0.1", "-p", str(port), "--state-dir", str(root / "state")]
    process = _spawn(args, root / "log")
    url = f"http://127.0.0.1:{port}/"
    server = Server("xandikos", url, f"{url}user/calendars/", process, root / "log")
    _wait_until_up(server, startup_timeout)
    return server
