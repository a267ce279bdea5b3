"""A Radicale CalDAV server on loopback, as a child process of the demo.

Radicale runs without authentication (``[auth] type = none``) on a free
port of 127.0.0.1 and keeps its collections in ``<folder>/radicale``, so
removing the demo's folder removes every calendar.  Calendars live two
levels deep, under :attr:`CalDavServer.home` (``/calpool/``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Loopback must never go through a proxy the environment may name.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_PR_SET_PDEATHSIG = 1


class CalDavServerError(RuntimeError):
    """Radicale did not come up, or refused a request while seeding."""


class CalDavServer:
    """A running Radicale; :meth:`stop` ends it and is safe to call twice."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.url = url
        self.home = f"{url}calpool/"
        self.process = process
        self.log_path = log_path

    @classmethod
    def start(cls, folder: Path, *, startup_timeout: float = 10.0) -> CalDavServer:
        root = folder / "radicale"
        root.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        config = root / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{port}\n\n"
            "[auth]\ntype = none\n\n"
            "[rights]\ntype = authenticated\n\n"
            f"[storage]\nfilesystem_folder = {root / 'collections'}\n\n"
            "[logging]\nlevel = warning\n\n"
            "[web]\ntype = none\n",
            encoding="utf-8",
        )
        log_path = root / "log"
        server = cls(f"http://127.0.0.1:{port}/", _spawn(config, log_path), log_path)
        try:
            server._wait_until_up(startup_timeout)
            server._expect("MKCOL", server.home, (201,))
        except BaseException:
            server.stop()
            raise
        return server

    def request(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One HTTP request; ``(status, body)``, never raising on a status."""
        request = urllib.request.Request(url, data=body or None, method=method,
                                         headers=headers or {})
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def make_calendar(self, name: str, display_name: str) -> str:
        """Create the calendar ``home/name/`` and return its id below ``home``."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop><D:displayname>{_xml_text(display_name)}</D:displayname>"
            "</D:prop></D:set></C:mkcalendar>"
        ).encode()
        self._expect("MKCALENDAR", f"{self.home}{name}/", (201,), body,
                     {"Content-Type": "application/xml; charset=utf-8"})
        return f"{name}/"

    def put_event(self, calendar_id: str, uid: str, ics: bytes) -> None:
        self._expect("PUT", f"{self.home}{calendar_id}{uid}.ics", (201, 204), ics,
                     {"Content-Type": "text/calendar; charset=utf-8"})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _expect(self, method: str, url: str, statuses: tuple[int, ...], body: bytes = b"",
                headers: dict[str, str] | None = None) -> None:
        try:
            status, answer = self.request(method, url, body, headers)
        except OSError as exc:  # refused or timed out: Radicale died under us
            raise CalDavServerError(f"Radicale did not answer {method} {url}: {exc}") from None
        if status not in statuses:
            detail = answer[:200].decode("utf-8", "replace")
            raise CalDavServerError(f"Radicale answered {method} {url} with {status}: {detail}")

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError):
                status, _ = self.request("PROPFIND", self.url, headers={"Depth": "0"})
                if status < 500:
                    return
            time.sleep(0.05)
        output = self.log_path.read_text(errors="replace").strip().splitlines()
        last = output[-1] if output else "no output"
        raise CalDavServerError(f"the demo's Radicale did not come up at {self.url} ({last})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=environment,
            # Its own session: Ctrl-C reaches the demo alone, which stops the
            # daemon first (a sync may be talking to Radicale) and then this.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def _die_with_parent() -> None:
    """Runs in the child before exec: should the demo be killed outright
    (no cleanup), the kernel sends Radicale SIGTERM instead of orphaning it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
