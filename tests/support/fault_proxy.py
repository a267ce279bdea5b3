"""An HTTP proxy in front of a real CalDAV server that misbehaves on cue.

Tests point calpool's account at :attr:`FaultProxy.url` instead of the
server's and add :class:`Rule` objects: the next requests a rule matches
(by path prefix and method) get the rule's :data:`Action` instead of the
server's answer; everything else is forwarded unchanged (``Location``
headers rewritten to the proxy).  Actions, each a class of failure seen in
the wild:

- :func:`status` — a scripted status, headers and body (5xx, 429 with
  ``Retry-After``, malformed XML, entity bombs, …);
- :func:`drop_mid_body` — the server's real answer, cut off half way
  through its body and the connection closed (a dropped connection
  mid-listing);
- :func:`stall` — nothing at all until the client gives up (a timeout);
- :func:`rewrite` — the real answer with its body transformed;
- :func:`stream` — a status and headers, then a body produced by a
  generator (a 50 MB multistatus, a body that never ends, a slow drip),
  sent chunked or with a declared length; it stops when the client hangs up
  or the proxy stops.

Usage::

    with FaultProxy(radicale.url) as proxy:
        proxy.add(Rule(status(503), path="/calpool/room/", times=2))
        account = CalDAVAccount(url=proxy.url + "calpool/")
"""

from __future__ import annotations

import http.client
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = [
    "Action", "FaultProxy", "Rule", "drop_mid_body", "rewrite", "stall", "status", "stream",
]

# Hop-by-hop and framing headers the proxy sets itself; and Accept-Encoding,
# so that answers pass uncompressed and actions can read and cut them.
_DROPPED = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "server", "date",
    "accept-encoding",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        proxy = self.server.proxy
        action = proxy.take(self.command, self.path)
        try:
            if action is None:
                self.forward()
            else:
                action(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = _any
    do_PROPFIND = do_PROPPATCH = do_REPORT = do_MKCALENDAR = do_MKCOL = do_MOVE = do_COPY = _any

    def upstream(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """The real server's answer to this request."""
        proxy = self.server.proxy
        connection = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=60
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
            headers["Content-Length"] = str(len(self.body))
            connection.request(self.command, self.path, self.body or None, headers)
            answer = connection.getresponse()
            body = answer.read()
            kept = []
            for name, value in answer.getheaders():
                if name.lower() in _DROPPED:
                    continue
                if name.lower() == "location":
                    value = value.replace(proxy.upstream_root, proxy.url)
                kept.append((name, value))
            return answer.status, kept, body
        finally:
            connection.close()

    def forward(self) -> None:
        code, headers, body = self.upstream()
        self.send_head(code, headers, length=len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_head(self, code: int, headers: list[tuple[str, str]], *, length: int | None) -> None:
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up on a cut or endless answer is the point.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


Action = Callable[[_Handler], None]
"""What the proxy does with a request instead of forwarding it."""


@dataclass
class Rule:
    """The next ``times`` requests (``None``: every one) whose path starts
    with ``path`` and whose method is in ``methods`` (empty: any) get
    ``action``.  Rules are tried oldest first."""

    action: Action
    path: str = "/"
    methods: frozenset[str] = frozenset()
    times: int | None = 1
    used: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (not self.methods or method in self.methods)


class FaultProxy:
    """See the module docstring.  ``upstream`` is the server's root URL."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname and parts.port, upstream
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.upstream_root = f"http://{parts.netloc}/"
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request
        self._httpd = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._httpd.proxy = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[Rule]:
        """Rules with uses left."""
        with self._lock:
            return [r for r in self._rules if r.times is None or r.used < r.times]

    def take(self, method: str, path: str) -> Action | None:
        with self._lock:
            self.seen.append((method, path))
            for rule in self._rules:
                if rule.matches(method, path) and (rule.times is None or rule.used < rule.times):
                    rule.used += 1
                    return rule.action
        return None

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- actions -------------------------------------------------------------------------


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Action:
    """Answer ``code`` with ``headers`` and ``body``."""

    def act(handler: _Handler) -> None:
        handler.send_head(code, list((headers or {}).items()), length=len(body))
        handler.wfile.write(body)

    return act


def drop_mid_body() -> Action:
    """Forward, then send only the first half of the real body (its full
    length declared) and close the connection."""

    def act(handler: _Handler) -> None:
        code, headers, body = handler.upstream()
        handler.send_head(code, headers, length=len(body))
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True

    return act


def stall(longest: float = 60.0) -> Action:
    """Answer nothing until the client hangs up, the proxy stops or
    ``longest`` seconds passed; then close."""

    def act(handler: _Handler) -> None:
        handler.connection.settimeout(0.05)
        stopping = handler.server.proxy.stopping
        waited = 0.0
        while waited < longest and not stopping.is_set():
            try:
                if handler.connection.recv(1, 0) == b"":
                    break  # the client hung up
            except TimeoutError:
                waited += 0.05
            except OSError:
                break
        handler.close_connection = True

    return act


def stream(
    code: int,
    chunks: Callable[[threading.Event], Iterator[bytes]],
    *,
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> Action:
    """Answer ``code`` and ``headers``, then the body ``chunks(stopping)``
    yields: chunked, or with ``length`` declared (whatever is sent)."""

    def act(handler: _Handler) -> None:
        handler.send_head(code, list((headers or {}).items()), length=length)
        stopping = handler.server.proxy.stopping
        for chunk in chunks(stopping):
            if stopping.is_set():
                break
            if not chunk:
                continue  # an empty chunk would end a chunked body
            if length is None:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                handler.wfile.write(chunk)
            handler.wfile.flush()
        else:
            if length is None:
                handler.wfile.write(b"0\r\n\r\n")
                return
        handler.close_connection = True

    return act


def rewrite(transform: Callable[[bytes], bytes]) -> Action:
    """Forward, and answer the real status and headers with
    ``transform(body)`` (objects a server would serve but never accept)."""

    def act(handler: _Handler) -> None:
        code, headers, body = handler.upstream()
        body = transform(body)
        handler.send_head(code, headers, length=len(body))
        handler.wfile.write(body)

    return act
