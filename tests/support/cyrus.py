"""A throwaway Cyrus IMAP server with its CalDAV module, for tests.

Debian's ``cyrus-imapd`` + ``cyrus-caldav`` (the server behind large hosted
mail services) behave differently from Radicale and Xandikos in ways that
broke calpool (issue 20): one UID may live in only one calendar of a login
(``C:unique-scheduling-object-resource``), a calendar shared by its owner is
reached through a 301, a PUT with ORGANIZER answers without an ETag.

:func:`start_cyrus` starts it the way :func:`~tests.support.caldav_servers.
start_radicale` starts Radicale and returns the same :class:`Server` shape:
a private ``imapd.conf`` / ``cyrus.conf`` in a fresh temporary folder,
``/usr/lib/cyrus/bin/master`` in the foreground on two loopback ports (IMAP
for ``cyradm``, HTTP for CalDAV), users in a private sasldb written with
``saslpasswd2``, mailboxes created with ``cyradm``.  ``stop()`` terminates
the master by its pid (it takes its services with it) and removes the folder.

Two layouts, as people run Cyrus:

- :attr:`Layout.ONE_OWNER`: calpool's login owns every calendar
  (``/dav/calendars/user/calpool/<name>/``, made by MKCALENDAR) — the layout
  where one UID in two calendars is refused;
- :attr:`Layout.SHARED`: each calendar is the ``Default`` calendar of its own
  user, shared to calpool's login with ``cyradm setacl``; calpool names it by
  the owner's path (``/dav/calendars/user/<name>/Default/``), which Cyrus
  answers with a 301 to ``/dav/calendars/user/calpool/<name>.Default/``.

Usage::

    with start_cyrus(tmp_path, layout=Layout.SHARED) as server:
        raw_url = server.make_calendar("room-a")    # where raw requests go
        account = server.account()                    # calpool's CalDAVAccount
        ref = CalendarRef(server.calendar_id("room-a"), "Europe/Berlin")

For pytest, :func:`require_cyrus` skips a test naming the missing Debian
packages, and fails it instead under ``CI=true`` (``.ci/run`` installs them).
The contract suite can add Cyrus as one more CalDAV server with
:func:`cyrus_contract_calendar`.
"""

from __future__ import annotations

import enum
import getpass
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.caldav import CalDAVAccount
from tests.support.caldav_servers import Server, ServerStartError, free_port

__all__ = [
    "CYRUS_PACKAGES",
    "ContractCalendar",
    "CyrusServer",
    "Layout",
    "cyrus_contract_calendar",
    "missing_cyrus_packages",
    "require_cyrus",
    "start_cyrus",
]

CYRUS_BIN = Path("/usr/lib/cyrus/bin")
CYRUS_PACKAGES = ("cyrus-imapd", "cyrus-caldav", "cyrus-admin", "sasl2-bin")
# One file each package brings that the fixture runs (``master`` comes
# with cyrus-common, a dependency of cyrus-imapd; cyrus-caldav is httpd).
_PACKAGE_FILES = {
    "cyrus-imapd": CYRUS_BIN / "imapd",
    "cyrus-caldav": CYRUS_BIN / "httpd",
    "cyrus-admin": Path("/usr/bin/cyradm"),
    "sasl2-bin": Path("/usr/sbin/saslpasswd2"),
}
INSTALL_HINT = (
    "Cyrus CalDAV tests need the Debian packages "
    + " ".join(CYRUS_PACKAGES)
    + " (apt-get install --no-install-recommends …)"
)

ADMIN = "cyrus-admin"
SERVICE_LOGIN = "calpool"
# Every right on a mailbox except administering it (RFC 4314 letters):
# read, write, create and delete objects — what calpool needs on a calendar.
_SHARE_RIGHTS = "lrswipkxtecdn"
_REALM = "127.0.0.1"  # the sasldb realm Cyrus looks users up in: its servername


class Layout(enum.StrEnum):
    ONE_OWNER = "one-owner"  # calpool's login owns every calendar
    SHARED = "shared"  # one owner per calendar, shared to calpool's login


def missing_cyrus_packages(files: Mapping[str, Path] = _PACKAGE_FILES) -> list[str]:
    """The Debian packages of :data:`CYRUS_PACKAGES` not installed here
    (``files``: package → a file it installs)."""
    return [name for name, path in files.items() if not path.exists()]


def require_cyrus(files: Mapping[str, Path] = _PACKAGE_FILES) -> None:
    """Skip the calling test without the packages, naming them; under
    ``CI=true`` fail instead."""
    missing = missing_cyrus_packages(files)
    if not missing:
        return
    message = f"{INSTALL_HINT}; missing: {' '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run the Cyrus tests", pytrace=False)
    pytest.skip(message)


@dataclass
class CyrusServer(Server):
    """A running Cyrus; ``home`` is calpool's calendar home
    (``/dav/calendars/user/calpool/``) and :meth:`Server.request` sends
    calpool's credentials."""

    layout: Layout = Layout.ONE_OWNER
    root: Path = field(default_factory=Path)
    imap_port: int = 0
    admin_password: str = field(default="", repr=False)
    _owners: set[str] = field(default_factory=set, repr=False)

    def __enter__(self) -> CyrusServer:
        return self

    def stop(self) -> None:
        """Terminate the master by its pid (its services go with it), then
        remove the private folder; safe to call twice, and a no-op on a
        view of another login (:meth:`as_login`)."""
        if self._stopped:
            return
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- calendars ---------------------------------------------------------

    def make_calendar(self, name: str) -> str:
        """Create calendar ``name`` in this server's layout and return the
        URL raw requests with calpool's credentials work at (for the shared
        layout: the shared location, as raw PUTs do not follow a 301)."""
        if self.layout is Layout.ONE_OWNER:
            return super().make_calendar(name)
        self.add_owner(name)
        self.share(name, SERVICE_LOGIN)
        return f"{self.home}{name}.Default/"

    def calendar_id(self, name: str) -> str:
        """What calpool's configuration names calendar ``name`` by,
        relative to :meth:`account`'s URL or as an absolute path: for the
        shared layout the owner's own path, which 301s to the shared one."""
        if self.layout is Layout.ONE_OWNER:
            return f"{name}/"
        return f"/dav/calendars/user/{name}/Default/"

    def account(self, **settings: Any) -> CalDAVAccount:
        """calpool's account on this server (``settings`` as CalDAVAccount
        takes them: ``sync_method``, ``retry``, ``timeout``)."""
        return CalDAVAccount(
            url=self.home, username=self.username, password=self.password, **settings
        )

    def add_owner(self, user: str) -> None:
        """A login ``user`` (password = its name) with its mailbox and its
        ``Default`` calendar (Cyrus provisions it on the owner's first
        CalDAV request)."""
        if user in self._owners:
            return
        _check_name(user)
        self._add_sasl_user(user, user)
        self.cyradm(f"cm user/{user}")
        home = f"{self.url}dav/calendars/user/{user}/"
        status, _, body = self.request_as(user, user, "PROPFIND", home, headers={"Depth": "1"})
        if status != 207:
            raise ServerStartError(f"PROPFIND {home} as {user} answered {status}: {body[:200]!r}")
        self._owners.add(user)

    def share(self, owner: str, to: str, *, calendar: str = "Default") -> None:
        """Give login ``to`` read and write rights on ``owner``'s calendar."""
        self.cyradm(f"setacl user/{owner}/#calendars/{calendar} {to} {_SHARE_RIGHTS}")

    def cyradm(self, *commands: str) -> str:
        """Run ``commands`` in one ``cyradm`` session as the admin; raise
        :class:`ServerStartError` when one of them reports an error."""
        script = "".join(f"{command}\n" for command in commands)
        done = subprocess.run(
            [
                "cyradm",
                "--user",
                ADMIN,
                "--password",
                self.admin_password,
                "--auth",
                "PLAIN",
                "--port",
                str(self.imap_port),
                "127.0.0.1",
            ],
            input=script,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        output = done.stdout + done.stderr
        # cyradm exits 0 even when a command failed; it prints
        # "<command>: <reason>" (after its prompts) instead.
        if done.returncode != 0 or _CYRADM_ERROR.search(output):
            raise ServerStartError(f"cyradm {commands!r} failed ({done.returncode}): {output}")
        return output

    def as_login(self, user: str, password: str, *, layout: Layout | None = None) -> CyrusServer:
        """This server seen by login ``user``: its own calendar home, its
        credentials on :meth:`request`; stopping the view stops nothing."""
        return CyrusServer(
            self.kind,
            self.url,
            f"{self.url}dav/calendars/user/{user}/",
            self.process,
            self.log_path,
            user,
            password,
            _stopped=True,
            layout=layout or self.layout,
            root=self.root,
            imap_port=self.imap_port,
            admin_password=self.admin_password,
            _owners=self._owners,
        )

    def request_as(
        self,
        user: str,
        password: str,
        method: str,
        url: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """:meth:`Server.request` with another login's credentials."""
        return self.as_login(user, password).request(method, url, body, headers)

    def purge_deleted(self, owner: str) -> None:
        """Purge the records of objects deleted from ``owner``'s calendars
        now (``cyr_expire -X 0``, as the services' user).  Cyrus refuses a
        sync token older than the last purged deletion (403
        ``valid-sync-token``): after a deletion and a purge it has forgotten
        every token it issued before."""
        command = [str(CYRUS_BIN / "cyr_expire"), "-X", "0", "-C", str(self.root / "imapd.conf")]
        command += ["-p", f"user/{owner}"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _run_as(), "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServerStartError(f"cyr_expire for {owner} failed: {done.stdout}{done.stderr}")

    def _add_sasl_user(self, user: str, password: str) -> None:
        subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(self.root / "sasldb2"), "-u", _REALM, user],
            input=password,
            text=True,
            check=True,
            timeout=30,
        )
        _give_to_cyrus(self.root / "sasldb2")


_CYRADM_ERROR = re.compile(r"(?m)^(?:\S+> )*[a-z]+: ")


def _check_name(name: str) -> None:
    # A login and mailbox name: no hierarchy separator, nothing cyradm or a
    # URL would read differently.
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,60}", name):
        raise ValueError(f"Cyrus test calendar names are [a-z0-9_-]: {name!r}")


def _run_as() -> str:
    """The system user the services run as: Cyrus refuses to run as root
    ("must run as the Cyrus user"), so under root the ``cyrus`` user the
    package created, else whoever runs the tests."""
    return "cyrus" if os.geteuid() == 0 else getpass.getuser()


def _give_to_cyrus(path: Path) -> None:
    if os.geteuid() != 0:
        return
    account = pwd.getpwnam("cyrus")
    for item in [path, *(path.rglob("*") if path.is_dir() else ())]:
        os.chown(item, account.pw_uid, account.pw_gid)


def _imapd_conf(root: Path) -> str:
    return f"""\
configdirectory: {root}/conf
partition-default: {root}/spool
defaultpartition: default
cyrus_user: {_run_as()}
admins: {ADMIN}
servername: {_REALM}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
# Basic auth over plain HTTP on loopback
allowplaintext: yes
httpmodules: caldav
# calpool writes every copy itself; no server-side scheduling (iTIP)
caldav_allowscheduling: off
unixhierarchysep: yes
altnamespace: yes
lmtpsocket: {root}/socket/lmtp
idlesocket: {root}/socket/idle
notifysocket: {root}/socket/notify
statuscache: no
syslog_prefix: calpool-test-cyrus
"""


def _cyrus_conf(root: Path, *, http_port: int, imap_port: int) -> str:
    conf = root / "imapd.conf"
    # prefork=0: a process per connection, nothing idle between tests.
    return f"""\
START {{
  recover cmd="ctl_cyrusdb -r -C {conf}"
}}
SERVICES {{
  imap cmd="imapd -C {conf}" listen="127.0.0.1:{imap_port}" prefork=0
  http cmd="httpd -C {conf}" listen="127.0.0.1:{http_port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"""


def start_cyrus(
    tmpdir: Path | str,
    *,
    layout: Layout = Layout.ONE_OWNER,
    password: str = "calpool-secret",
    startup_timeout: float = 30.0,
) -> CyrusServer:
    """Start Cyrus in ``layout``; its log goes to ``tmpdir/cyrus/log``.

    The server's own files live in a fresh folder under the system's
    temporary directory (Unix socket paths must stay short, and under root
    the ``cyrus`` user must be able to reach them); ``stop()`` removes it.
    Raise :class:`ServerStartError` naming the output when it does not come
    up, and :class:`FileNotFoundError` without the packages (call
    :func:`require_cyrus` first in tests)."""
    missing = missing_cyrus_packages()
    if missing:
        raise FileNotFoundError(f"{INSTALL_HINT}; missing: {' '.join(missing)}")
    log_dir = Path(tmpdir) / "cyrus"
    log_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="calpool-cyrus-"))
    for sub in ("conf", "spool", "socket"):
        (root / sub).mkdir()
    http_port, imap_port = free_port(), free_port()
    (root / "imapd.conf").write_text(_imapd_conf(root))
    (root / "cyrus.conf").write_text(_cyrus_conf(root, http_port=http_port, imap_port=imap_port))
    admin_password = "admin-" + password
    for user, secret in ((ADMIN, admin_password), (SERVICE_LOGIN, password)):
        subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(root / "sasldb2"), "-u", _REALM, user],
            input=secret,
            text=True,
            check=True,
            timeout=30,
        )
    _give_to_cyrus(root)
    log_path = log_dir / "log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(CYRUS_BIN / "master"),
                "-C",
                str(root / "imapd.conf"),
                "-M",
                str(root / "cyrus.conf"),
                "-p",
                str(root / "master.pid"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{http_port}/"
    server = CyrusServer(
        "cyrus",
        url,
        f"{url}dav/calendars/user/{SERVICE_LOGIN}/",
        process,
        log_path,
        SERVICE_LOGIN,
        password,
        layout=layout,
        root=root,
        imap_port=imap_port,
        admin_password=admin_password,
    )
    try:
        _provision(server, startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _provision(server: CyrusServer, timeout: float) -> None:
    """Wait for IMAP, then create calpool's mailbox; its calendar home
    answers once the mailbox exists (Cyrus logs to syslog only, so a
    failure names the master's exit code, not its reasons)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(f"cyrus master exited with {server.process.returncode}")
        try:
            server.cyradm(f"cm user/{SERVICE_LOGIN}")
            break
        except ServerStartError as exc:
            last = str(exc)
            time.sleep(0.2)
    else:
        raise ServerStartError(f"cyrus did not come up at {server.url}: {last}")
    status, _, body = server.request("PROPFIND", server.home, headers={"Depth": "0"})
    if status != 207:
        raise ServerStartError(f"PROPFIND {server.home} answered {status}: {body[:200]!r}")


@dataclass(frozen=True)
class ContractCalendar:
    """One contract case's calendar on Cyrus: ``driver`` sends the suite's
    raw requests (to ``url``), calpool reaches it as ``calendar_id`` with
    ``account``; ``owner`` is the login whose mailbox holds it."""

    driver: CyrusServer
    url: str
    calendar_id: str
    account: CalDAVAccount
    owner: str


def cyrus_contract_calendar(server: CyrusServer, name: str, **settings: Any) -> ContractCalendar:
    """For the connector contract suite: a fresh calendar ``name``
    (``settings`` go to the account: ``sync_method``, ``retry``, …).

    One owner: a login of its own per case (``owner-<name>``) owns the
    calendar and is calpool's login for it, so the suite's fixed UIDs do not
    meet across cases (Cyrus refuses one UID in two calendars of a login);
    the driver's other calendars (a foreign cursor's) live in that login
    too.  Shared: ``name`` is a user whose calendar is shared to calpool;
    calpool names it by the owner's path, so every case crosses the 301."""
    if server.layout is Layout.ONE_OWNER:
        login = f"owner-{name}"
        server.add_owner(login)
        view = server.as_login(login, login)
        url = view.make_calendar(name)
        return ContractCalendar(
            view, url, view.calendar_id(name), view.account(**settings), owner=login
        )
    url = server.make_calendar(name)
    return ContractCalendar(
        server, url, server.calendar_id(name), server.account(**settings), owner=name
    )
