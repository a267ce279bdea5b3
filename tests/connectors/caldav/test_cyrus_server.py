"""The Cyrus fixture itself, and the Cyrus behaviours calpool must cope with
(issue 20), seen with raw requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cyrus import CyrusServer, Layout, require_cyrus, start_cyrus

CALENDAR = {"Content-Type": "text/calendar; charset=utf-8"}


def ics(uid: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270302T100000Z\r\nDTEND:20270302T110000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture(scope="module", params=list(Layout), ids=[layout.value for layout in Layout])
def cyrus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CyrusServer]:
    require_cyrus()
    with start_cyrus(tmp_path_factory.mktemp("cyrus"), layout=request.param) as server:
        yield server


def test_calendars_take_events_in_either_layout(cyrus: CyrusServer) -> None:
    url = cyrus.make_calendar("fixture")
    status, _, body = cyrus.request(
        "PUT", f"{url}a.ics", ics("a"), {**CALENDAR, "If-None-Match": "*"}
    )
    assert status == 201, body


def test_one_uid_is_refused_in_a_second_calendar_of_one_login(tmp_path: Path) -> None:
    """Regression (issue 20): why each calendar copy needs its own UID."""
    require_cyrus()
    with start_cyrus(tmp_path, layout=Layout.ONE_OWNER) as server:
        first, second = server.make_calendar("owner"), server.make_calendar("room")
        assert server.request("PUT", f"{first}x.ics", ics("same"), CALENDAR)[0] == 201
        status, _, body = server.request("PUT", f"{second}x.ics", ics("same"), CALENDAR)
    assert status == 403
    assert b"unique-scheduling-object-resource" in body


def test_the_owners_path_of_a_shared_calendar_redirects(cyrus: CyrusServer) -> None:
    if cyrus.layout is not Layout.SHARED:
        pytest.skip("only shared calendars have an owner's path of their own")
    cyrus.make_calendar("redirected")
    status, headers, _ = cyrus.request(
        "PROPFIND", cyrus.url.rstrip("/") + cyrus.calendar_id("redirected"), headers={"Depth": "0"}
    )
    assert status == 301
    assert headers["Location"].endswith("/dav/calendars/user/calpool/redirected.Default/")


ABSENT = {"cyrus-imapd": Path("/nonexistent/imapd"), "sasl2-bin": Path("/nonexistent/saslpasswd2")}


def test_without_the_packages_the_tests_skip_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing: cyrus-imapd sasl2-bin"):
        require_cyrus(ABSENT)


def test_under_ci_the_missing_packages_fail_the_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cyrus-imapd sasl2-bin"):
        require_cyrus(ABSENT)
