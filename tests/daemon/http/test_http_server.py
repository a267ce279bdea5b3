"""The hook through a real ``HttpServer`` (uvicorn on a thread), plain and over TLS."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from daemon.http.server import HttpServer
from tests.daemon.http.conftest import TOKENS, Site

SLOTS = "/v1/event-types/consult/slots"
AUTH = {"Authorization": f"Bearer {TOKENS['website']}"}


@pytest.fixture
def served(site: Site) -> Iterator[tuple[Site, HttpServer]]:
    server = HttpServer(site.api, host="127.0.0.1", port=0)
    server.start()
    yield site, server
    server.stop()


def test_answers_over_a_real_socket(served: tuple[Site, HttpServer]) -> None:
    site, server = served
    site.busy("room-a", ("2027-03-25T08:00:00+00:00", "2027-03-25T09:00:00+00:00"))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        answer = client.get(SLOTS, params={"end": "2027-03-26"}, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json()["slots"][0]["rooms_available"] == {"small": ["room-b"]}
        denied = client.get(SLOTS)
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.headers["x-request-id"]
        assert client.get("/openapi.json").json()["info"]["title"] == "calpool"


def test_stop_closes_the_listener(site: Site) -> None:
    server = HttpServer(site.api, host="127.0.0.1", port=0)
    server.start()
    url = server.url
    assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz", timeout=2)


def test_serves_https_with_the_configured_certificate(site: Site, tmp_path: Path) -> None:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    server = HttpServer(site.api, host="127.0.0.1", port=0, tls_cert_file=cert,
                        tls_key_file=key)
    server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context()
        authority.configure_trust(trusted)
        with httpx.Client(base_url=server.url, verify=trusted, timeout=10) as client:
            assert client.get(SLOTS, headers=AUTH).status_code == 200
        # A client that does not trust the authority refuses the connection.
        with pytest.raises(httpx.ConnectError), httpx.Client(timeout=10) as stranger:
            stranger.get(server.url + "/healthz")
        # Plain HTTP to the TLS port gets no answer from the hook.
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https", "http") + "/healthz", timeout=5)
    finally:
        server.stop()


def test_small_answers_do_not_wait_for_a_delayed_ack(served: tuple[Site, HttpServer]) -> None:
    """Regression: the listener was made with proto 0, so asyncio left
    TCP_NODELAY off on accepted sockets and every keep-alive answer took
    ~40 ms (the peer's delayed ACK) instead of about one."""
    _site, server = served
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/healthz")
        took = []
        for _ in range(15):
            begin = time.perf_counter()
            client.get("/healthz")
            took.append(time.perf_counter() - begin)
    assert sorted(took)[len(took) // 2] < 0.025
