"""The customer pages over HTTP (interface.md, "Customer pages (HTML)"):
every route and status, on Radicale, with FastAPI's test client.

Now is Thursday 2027-03-25 08:00 in Berlin; alice works 09:00-12:00;
consult is 30 minutes with one room of ``small`` (room-a, room-b) and is
public here; team needs bob and a room of each pool.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.daemon.http.bookings_site import (
    ANN,
    SLOT,
    DavSite,
    dav_config,
    radicale,  # noqa: F401 (a fixture)
)
from tests.daemon.http.conftest import NOW, TOKENS, MakeSite
from tests.support.caldav_servers import Server

SECOND = "2027-03-25T10:30:00+01:00"
FORM = {"start": SLOT, "name": ANN["name"], "email": ANN["email"], "notes": "ring twice",
        "timezone": "Europe/Berlin"}
PUBLIC = 'horizon = "30d"\npublic = true'


def site_of(make_site: MakeSite, server: Server, *, public: str = PUBLIC, http: str = "",
            **options: Any) -> DavSite:
    config, ids = dav_config(server, **options)
    text = config.text().replace('horizon = "30d"', public)
    if http:
        text = text.replace("[http]\n", f"[http]\n{http}\n")
    return DavSite(make_site(text), server, ids)


@pytest.fixture
def dav(make_site: MakeSite, radicale: Server) -> DavSite:  # noqa: F811
    return site_of(make_site, radicale)


class Page(HTMLParser):
    """What a test looks at in a page: forms, radios, inputs, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.radios: list[dict[str, str]] = []
        self.inputs: dict[str, dict[str, str]] = {}
        self.selects: list[str] = []
        self.scripts: list[dict[str, str]] = []
        self.metas: list[dict[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(found)
        elif tag == "input" and found.get("type") == "radio":
            self.radios.append(found)
        elif tag in ("input", "textarea"):
            self.inputs[found.get("name", "")] = found
        elif tag == "select":
            self.selects.append(found.get("name", ""))
        elif tag == "script":
            self.scripts.append(found)
        elif tag == "meta":
            self.metas.append(found)
        elif tag == "a":
            self.links.append(found.get("href", ""))
        if tag in ("script", "style", "option"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "option"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(" ".join(data.split()))

    @property
    def words(self) -> str:
        return " ".join(self.text)

    @property
    def starts(self) -> list[str]:
        return [radio["value"] for radio in self.radios if radio.get("name") == "start"]


def page_of(response: Any, status: int) -> Page:
    """The response is an HTML page with the page headers and ``status``."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    page = Page(response.text)
    assert all(script.get("src") for script in page.scripts), "no inline script"
    assert "Traceback" not in response.text and '"type"' not in response.text
    return page


def new_link(dav: DavSite, **body: Any) -> str:
    response = dav.site.client.post("/v1/links", json={"event_type": "consult", **body},
                                    headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def slots_document(dav: DavSite, token: str, zone: str) -> list[str]:
    response = dav.site.client.get(f"/v1/links/{token}/slots", params={"timezone": zone})
    assert response.status_code == 200
    return [slot["start"] for slot in response.json()["slots"]]


def booked(dav: DavSite, token: str, form: dict[str, str] | None = None) -> str:
    """Book through the link's page; the manage token of the 303."""
    response = dav.site.client.post(f"/book/{token}", data=form or FORM, follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    match = re.fullmatch(r"/manage/([A-Za-z0-9_-]{43})(\?timezone=[^&]+)?",
                         response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


# ---- GET /book/{token} --------------------------------------------------------------------------


def test_link_page_offers_the_slots_of_the_slots_document_grouped_by_day(dav: DavSite) -> None:
    token = new_link(dav)
    page = page_of(dav.site.client.get(f"/book/{token}"), 200)

    assert page.starts == slots_document(dav, token, "Europe/Berlin")
    assert page.starts[0] == "2027-03-25T09:00:00+01:00"  # in the owner's zone by default
    forms = [form for form in page.forms if form.get("method") == "post"]
    assert forms == [{"method": "post", "action": f"/book/{token}", "class": "book"}]
    assert {"name", "email", "notes", "timezone"} <= set(page.inputs)
    assert page.selects == ["timezone"]
    assert "Thursday 25 March 2027" in page.words and "Friday 26 March 2027" in page.words
    assert "30 minutes with alice" in page.words


def test_link_page_shows_times_in_the_asked_zone_and_pages_by_week(dav: DavSite) -> None:
    token = new_link(dav)
    page = page_of(dav.site.client.get(f"/book/{token}",
                                       params={"timezone": "America/New_York"}), 200)
    assert page.starts == slots_document(dav, token, "America/New_York")
    assert page.starts[0] == "2027-03-25T04:00:00-04:00"

    later = page_of(dav.site.client.get(f"/book/{token}", params={
        "timezone": "Europe/Berlin", "start": "2027-04-01"}), 200)
    assert later.starts[0] == "2027-04-01T09:00:00+02:00"
    assert all("2027-04-01" <= start[:10] < "2027-04-08" for start in later.starts)
    assert f"/book/{token}?start=2027-03-25&timezone=Europe/Berlin" in later.links


def test_link_page_with_a_prefilled_attendee_asks_no_name_or_email(dav: DavSite) -> None:
    token = new_link(dav, attendee={"name": "Bea Prefilled", "email": "bea@example.com"})
    page = page_of(dav.site.client.get(f"/book/{token}"), 200)
    assert "name" not in page.inputs and "email" not in page.inputs
    assert "Bea Prefilled" in page.words

    booked(dav, token, {"start": SLOT, "timezone": "Europe/Berlin"})


def test_unknown_link_is_a_404_page(dav: DavSite) -> None:
    page = page_of(dav.site.client.get("/book/no-such-token"), 404)
    assert "Page not found" in page.words
    page_of(dav.site.client.post("/book/no-such-token", data=FORM), 404)


def test_expired_and_revoked_links_are_410_pages(dav: DavSite) -> None:
    expiring = new_link(dav, expires_in="1h")
    revoked = new_link(dav)
    dav.site.client.delete(f"/v1/links/{revoked}",
                           headers={"Authorization": f"Bearer {TOKENS['ops']}"})
    dav.site.clock[0] = NOW + timedelta(hours=2)

    assert "expired" in page_of(dav.site.client.get(f"/book/{expiring}"), 410).words
    assert "revoked" in page_of(dav.site.client.get(f"/book/{revoked}"), 410).words
    page_of(dav.site.client.post(f"/book/{revoked}", data=FORM), 410)


# ---- POST /book/{token} -------------------------------------------------------------------------


def test_booking_through_the_page_redirects_to_its_manage_page(dav: DavSite) -> None:
    token = new_link(dav)
    response = dav.site.client.post(f"/book/{token}", data=FORM, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith("?timezone=Europe%2FBerlin")
    assert "HttpOnly" in response.headers["set-cookie"]
    assert f"Path=/book/{token}" in response.headers["set-cookie"]

    manage = page_of(dav.site.client.get(response.headers["location"]), 200)
    assert "Your booking is confirmed." in manage.words
    assert "Thursday 25 March 2027, 10:00 (Europe/Berlin)" in manage.words
    assert "Room A (4 seats)" in manage.words and "alice" in manage.words
    [booking] = dav.app.bookings.list()
    assert booking.notes == "ring twice" and booking.attendee.email == ANN["email"]


def test_a_used_link_says_already_booked_and_links_the_manage_page_only_to_its_booker(
        dav: DavSite, make_site: MakeSite) -> None:
    token = new_link(dav)
    manage = booked(dav, token)

    mine = page_of(dav.site.client.get(f"/book/{token}"), 200)  # the cookie is sent
    assert "already booked" in mine.words and "Thursday 25 March 2027, 10:00" in mine.words
    assert any(link.startswith(f"/manage/{manage}") for link in mine.links)

    dav.site.client.cookies.clear()
    theirs = page_of(dav.site.client.get(f"/book/{token}"), 200)
    assert "already booked" in theirs.words
    assert not any("/manage/" in link for link in theirs.links)
    assert manage not in dav.site.client.get(f"/book/{token}").text

    again = page_of(dav.site.client.post(f"/book/{token}", data={**FORM, "start": SECOND}), 409)
    assert "already booked" in again.words
    assert len(dav.app.bookings.list()) == 1


def test_a_slot_taken_meanwhile_is_a_409_page_with_the_reason_and_the_remaining_slots(
        dav: DavSite) -> None:
    token = new_link(dav)
    response = dav.post({"event_type": "consult", "start": SLOT, "attendee": ANN})
    assert response.status_code == 201  # alice is busy at 10:00 from now on

    page = page_of(dav.site.client.post(f"/book/{token}", data=FORM), 409)

    assert "This time cannot be booked: the owner is busy then." in page.words
    assert SLOT not in page.starts and SECOND in page.starts
    assert page.inputs["name"]["value"] == ANN["name"]  # what was typed is kept
    assert not any(radio.get("checked") is not None for radio in page.radios)


@pytest.mark.parametrize(("change", "field", "sentence"), [
    ({"name": "  "}, "name", "Enter your name."),
    ({"email": "not-an-address"}, "email", "Enter an email address"),
    ({"start": ""}, "start", "Choose a time."),
    ({"start": "next tuesday"}, "start", "That is not a time we offered"),
    ({"start": "2027-03-25T10:10:00+01:00"}, "start", "not on the event type's slot grid"),
])
def test_invalid_fields_are_a_422_page_with_the_message_and_the_input_kept(
        dav: DavSite, change: dict[str, str], field: str, sentence: str) -> None:
    token = new_link(dav)
    form = {**FORM, **change}
    page = page_of(dav.site.client.post(f"/book/{token}", data=form), 422)

    assert sentence.lower() in page.words.lower()
    assert page.inputs["notes"] is not None and "ring twice" in page.words
    if field != "name":
        assert f'id="{field}-error"' in dav.site.client.post(f"/book/{token}", data=form).text
    if "name" in change:
        assert page.inputs["name"]["aria-invalid"] == "true"
    else:
        assert page.inputs["name"]["value"] == ANN["name"]
    assert dav.app.bookings.list() == []
    page_of(dav.site.client.get(f"/book/{token}"), 200)  # the link is still usable


# ---- /meet/{event_type} -------------------------------------------------------------------------


def test_public_page_books_without_a_link(dav: DavSite) -> None:
    page = page_of(dav.site.client.get("/meet/consult"), 200)
    assert [form["action"] for form in page.forms if form.get("method") == "post"] == [
        "/meet/consult"]
    assert "website" in page.inputs  # the honeypot

    response = dav.site.client.post("/meet/consult", data=FORM, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/manage/")
    assert len(dav.app.bookings.list()) == 1


def test_unknown_or_not_public_event_types_have_no_page(dav: DavSite) -> None:
    for path in ("/meet/team", "/meet/nothing"):
        page_of(dav.site.client.get(path), 404)
        page_of(dav.site.client.post(path, data=FORM), 404)


def test_a_filled_honeypot_books_nothing(dav: DavSite) -> None:
    page = page_of(dav.site.client.post("/meet/consult", data={**FORM, "website": "x"}), 422)
    assert "could not be sent" in page.words
    assert dav.app.bookings.list() == []


def test_public_bookings_over_the_rate_get_a_429_page(make_site: MakeSite,
                                                      radicale: Server) -> None:  # noqa: F811
    dav = site_of(make_site, radicale, http='public_rate = "2/h"')
    for start in (SLOT, SECOND):
        assert dav.site.client.post("/meet/consult", data={**FORM, "start": start},
                                    follow_redirects=False).status_code == 303
    response = dav.site.client.post("/meet/consult",
                                    data={**FORM, "start": "2027-03-25T11:00:00+01:00"})
    page = page_of(response, 429)
    assert 3000 < int(response.headers["retry-after"]) <= 3600
    assert "Too many bookings" in page.words
    # X-Forwarded-For is not trusted without http.trust_proxy.
    page_of(dav.site.client.post("/meet/consult", data=FORM,
                                 headers={"X-Forwarded-For": "203.0.113.9"}), 429)


def test_behind_a_trusted_proxy_the_forwarded_address_counts(make_site: MakeSite,
                                                             radicale: Server) -> None:  # noqa: F811
    dav = site_of(make_site, radicale, http='public_rate = "1/h"\ntrust_proxy = true')
    first = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}
    assert dav.site.client.post("/meet/consult", data=FORM, headers=first,
                                follow_redirects=False).status_code == 303
    page_of(dav.site.client.post("/meet/consult", data={**FORM, "start": SECOND},
                                 headers={"X-Forwarded-For": "203.0.113.1"}), 429)
    assert dav.site.client.post("/meet/consult", data={**FORM, "start": SECOND},
                                headers={"X-Forwarded-For": "203.0.113.2"},
                                follow_redirects=False).status_code == 303


# ---- /manage/{manage_token} ---------------------------------------------------------------------


def test_manage_page_of_an_unknown_token_is_a_404_page(dav: DavSite) -> None:
    page_of(dav.site.client.get("/manage/nothing"), 404)
    page_of(dav.site.client.post("/manage/nothing/cancel"), 404)
    page_of(dav.site.client.post("/manage/nothing/reschedule", data={"start": SLOT}), 404)


def test_manage_page_offers_cancel_and_the_reschedule_picker(dav: DavSite) -> None:
    manage = booked(dav, new_link(dav))
    page = page_of(dav.site.client.get(f"/manage/{manage}",
                                       params={"timezone": "America/New_York"}), 200)
    actions = [form["action"] for form in page.forms if form.get("method") == "post"]
    assert actions == [f"/manage/{manage}/cancel", f"/manage/{manage}/reschedule"]
    assert "Thursday 25 March 2027, 05:00 (America/New_York)" in page.words
    assert page.starts[0] == "2027-03-25T04:00:00-04:00"


def test_a_pending_booking_is_being_confirmed_and_the_page_refreshes(dav: DavSite) -> None:
    issue, token = dav.app.manage.issuer()
    dav.app.bookings.book("consult", NOW + timedelta(hours=2), _ann(), "", NOW,
                          on_reserved=issue)  # reserved; the outbox has not run
    assert token.value is not None
    page = page_of(dav.site.client.get(f"/manage/{token.value}"), 200)
    assert "being confirmed" in page.words
    assert {"http-equiv": "refresh", "content": "3"} in page.metas


def test_cancel_redirects_back_to_the_manage_page_saying_cancelled(dav: DavSite) -> None:
    manage = booked(dav, new_link(dav))
    response = dav.site.client.post(f"/manage/{manage}/cancel",
                                    data={"timezone": "Europe/Berlin"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/manage/{manage}?timezone=Europe%2FBerlin"
    page = page_of(dav.site.client.get(response.headers["location"]), 200)
    assert "This booking is cancelled." in page.words
    assert page.forms == []
    assert dav.uids("alice") == []
    # Again: nothing more happens.
    assert dav.site.client.post(f"/manage/{manage}/cancel",
                                follow_redirects=False).status_code == 303


def test_reschedule_moves_the_booking_keeping_its_room(dav: DavSite) -> None:
    manage = booked(dav, new_link(dav))
    response = dav.site.client.post(f"/manage/{manage}/reschedule",
                                    data={"start": SECOND, "timezone": "Europe/Berlin"},
                                    follow_redirects=False)
    assert response.status_code == 303
    page = page_of(dav.site.client.get(response.headers["location"]), 200)
    assert "Thursday 25 March 2027, 10:30 (Europe/Berlin)" in page.words
    [booking] = dav.app.bookings.list()
    assert booking.rooms == {"small": "room-a"}


def test_reschedule_to_a_refused_time_is_a_409_page_with_the_reason(dav: DavSite) -> None:
    manage = booked(dav, new_link(dav))
    page = page_of(dav.site.client.post(f"/manage/{manage}/reschedule",
                                        data={"start": "2027-03-25T13:00:00+01:00"}), 409)
    assert "the start is outside working hours" in page.words
    assert page_of(dav.site.client.post(f"/manage/{manage}/reschedule", data={}), 422)


def test_after_the_change_notice_the_page_says_whom_to_contact(
        make_site: MakeSite, radicale: Server) -> None:  # noqa: F811
    dav = site_of(make_site, radicale, public=PUBLIC + '\nchange_notice = "1h"')
    manage = booked(dav, new_link(dav))
    dav.site.clock[0] = NOW + timedelta(minutes=90)  # 09:30 Berlin; the booking is at 10:00

    page = page_of(dav.site.client.get(f"/manage/{manage}"), 200)
    assert "can no longer be changed here. Please contact alice." in page.words
    assert page.forms == []
    closed = page_of(dav.site.client.post(f"/manage/{manage}/cancel"), 409)
    assert "Please contact alice." in closed.words
    page_of(dav.site.client.post(f"/manage/{manage}/reschedule", data={"start": SECOND}), 409)
    assert dav.app.bookings.list()[0].status.value == "confirmed"


def test_manage_url_of_a_link_booking_through_the_api_opens_its_page(dav: DavSite) -> None:
    token = new_link(dav)
    response = dav.site.client.post(f"/v1/links/{token}/bookings",
                                    json={"start": SLOT, "attendee": ANN})
    assert response.status_code == 201
    url = response.json()["manage_url"]
    assert url.startswith("http://127.0.0.1:8740/manage/")
    page = page_of(dav.site.client.get(url.removeprefix("http://127.0.0.1:8740")), 200)
    assert "Your booking is confirmed." in page.words


# ---- assets -------------------------------------------------------------------------------------


def test_assets_are_served_by_the_daemon(dav: DavSite) -> None:
    script = dav.site.client.get("/assets/calpool.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript")
    assert dav.site.client.get("/assets/calpool.css").headers["x-content-type-options"] == \
        "nosniff"
    page_of(dav.site.client.get("/assets/secret.txt"), 404)


def _ann() -> Any:
    from engine.core.model import Attendee

    return Attendee(ANN["name"], ANN["email"])


def test_the_openapi_document_names_manage_url_and_the_pages(dav: DavSite) -> None:
    document = dav.site.client.get("/openapi.json").json()
    assert "/book/{token}" not in document["paths"]  # pages are for people
    assert "Customer pages" in document["info"]["description"]
    created = document["components"]["schemas"]["CreatedBookingDocument"]
    assert "manage_url" in created["required"]
    for path in ("/v1/bookings", "/v1/links/{token}/bookings"):
        answer = document["paths"][path]["post"]["responses"]["201"]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
            "/CreatedBookingDocument")
