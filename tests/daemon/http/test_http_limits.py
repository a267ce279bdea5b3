"""What one request may cost (issue 23): bodies over ``http.max_body`` get
413 before they are read, token or not; a client that is slow to send its
headers or body, or idles on a connection, is cut off after
``http.client_timeout``; connections beyond ``http.max_connections`` get
503.  Through a real ``HttpServer`` and raw sockets, as a hostile client
would talk."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from daemon.http.server import HttpServer
from tests.daemon.http.conftest import CONFIG, TOKENS, MakeSite, Site, assert_problem

TIMEOUT = 1.0  # http.client_timeout of these servers, seconds
LIMITED = CONFIG.replace('[sync]\n', '[http]\nmax_body = "1KiB"\n\n[sync]\n', 1)
POST_ROUTES = ["/v1/bookings", "/v1/links", "/v1/links/some-token/bookings",
               "/v1/bookings/some-id/reschedule", "/v1/event-types"]


@pytest.fixture
def limited(make_site: MakeSite) -> Site:
    return make_site(LIMITED)


@pytest.fixture
def server(limited: Site) -> Iterator[HttpServer]:
    served = HttpServer(limited.api, host="127.0.0.1", port=0, client_timeout=TIMEOUT,
                        max_connections=4)
    served.start()
    yield served
    served.stop()


def connect(server: HttpServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock


def read_all(sock: socket.socket, within: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    sock.settimeout(within)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic() - started


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: calpool.test",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("token", [None, "desk"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    server: HttpServer, path: str, token: str | None,
) -> None:
    """100 MB announced, not a byte of it sent: the answer comes at once."""
    auth = {"Authorization": f"Bearer {TOKENS[token]}"} if token else {}
    with connect(server) as sock:
        sock.sendall(request_head("POST", path, Content_Type="application/json",
                                  Content_Length=str(100 * 1024 * 1024), **auth))
        raw, took = read_all(sock)
    status, headers, document = parse(raw)
    assert (status, document["type"], document["max_body"]) == (
        413, "/problems/payload-too-large", 1024)
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close" and headers["x-request-id"]
    assert took < TIMEOUT  # not the read timeout: answered without waiting for the body


@pytest.mark.parametrize(("path", "token"), [
    ("/v1/bookings", "desk"), ("/v1/links", "ops"), ("/v1/bookings", None), ("/v1/links", None),
    ("/v1/bookings", "ops"), ("/v1/links/some-token/bookings", None),
])
def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(
    server: HttpServer, path: str, token: str | None,
) -> None:
    """Without a Content-Length the body is counted as it is read.  A
    request refused before its body is read (no token, no scope: 401, 403)
    is answered once, and the connection then closes."""
    auth = {"Authorization": f"Bearer {TOKENS[token]}"} if token else {}
    with connect(server) as sock:
        sock.sendall(request_head("POST", path, Content_Type="application/json",
                                  Transfer_Encoding="chunked", **auth))
        chunk = b"x" * 600
        try:
            for _ in range(50):  # 30,000 bytes at most, 1 KiB allowed
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw, took = read_all(sock)
    status, _, document = parse(raw)  # one answer only
    if path.startswith("/v1/links/"):
        assert status == 404  # authorised by the link token in the path: unknown
    elif token is None:
        assert status == 401
    elif token == "ops" and path == "/v1/bookings":
        assert status == 403
    else:
        assert (status, document["type"]) == (413, "/problems/payload-too-large")
    assert took < TIMEOUT + 3


def test_a_body_at_the_limit_is_read(limited: Site) -> None:
    body = json.dumps({"event_type": "consult", "start": "2027-03-26T10:00",
                       "attendee": {"name": "A" * 900, "email": "ann@example.com"}})
    body += " " * (1024 - len(body))
    answer = limited.client.post("/v1/bookings", content=body.encode(),
                                 headers={"Content-Type": "application/json"})
    assert_problem(answer, 401, "/problems/unauthorized")
    over = limited.client.post("/v1/bookings", content=(body + " ").encode(),
                               headers={"Content-Type": "application/json"})
    assert_problem(over, 413, "/problems/payload-too-large")


@pytest.mark.parametrize("sent", [
    b"",  # connected, nothing sent
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    b"GE",  # not even the request line
    b"POST /v1/links HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nAuthorization: Bearer "
    + TOKENS["ops"].encode() + b"\r\n\r\n{\"event",  # the body stalls
])
def test_a_slow_client_is_cut_off_after_the_client_timeout(server: HttpServer,
                                                           sent: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(sent)
        raw, took = read_all(sock)
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 3
    status, headers, document = parse(raw)
    assert (status, document["type"]) == (408, "/problems/request-timeout")
    assert headers["content-type"] == "application/problem+json"


def test_a_drip_fed_request_is_cut_off_too(server: HttpServer) -> None:
    """One byte now and then does not extend the deadline."""
    with connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: calpool.test\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > TIMEOUT + 3:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw, _ = read_all(sock)
    assert time.monotonic() - started < TIMEOUT + 3
    assert parse(raw)[0] == 408


def test_a_request_answered_before_its_body_is_in_gets_one_answer(server: HttpServer) -> None:
    """401 at once (no token); the client then owes the body and the
    connection closes at the deadline, without a second answer."""
    with connect(server) as sock:
        sock.sendall(b"POST /v1/links HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        raw, took = read_all(sock)
    status, _, document = parse(raw)  # one document only
    assert (status, document["type"]) == (401, "/problems/unauthorized")
    assert took < TIMEOUT + 3


def test_an_idle_keep_alive_connection_is_closed(server: HttpServer) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("GET", "/healthz"))
        time.sleep(0.2)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        rest, took = read_all(sock)
    assert rest == b"" and took < TIMEOUT + 3


def test_a_quick_client_on_a_kept_alive_connection_is_not_cut_off(server: HttpServer) -> None:
    with connect(server) as sock:
        for _ in range(4):
            sock.sendall(request_head("GET", "/healthz"))
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            time.sleep(TIMEOUT / 2)  # idle, but less than the timeout each time


def test_connections_beyond_max_connections_get_503(server: HttpServer) -> None:
    idle = [connect(server) for _ in range(4)]
    try:
        time.sleep(0.2)
        with connect(server) as sock:
            raw, took = read_all(sock)  # answered as it opens, nothing sent
        status, headers, document = parse(raw)
        assert (status, document["type"]) == (503, "/problems/too-many-connections")
        assert headers["retry-after"] == "1" and took < TIMEOUT
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    with connect(server) as sock:
        sock.sendall(request_head("GET", "/healthz", Connection="close"))
        raw, _ = read_all(sock)
    assert raw.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("sent", [
    b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello on the plain port
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
])
def test_a_malformed_request_gets_a_problem_document(server: HttpServer, sent: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(sent)
        raw, _ = read_all(sock)
    status, headers, document = parse(raw)
    assert (status, document["type"]) == (400, "/problems/http-error")
    assert headers["content-type"] == "application/problem+json"
