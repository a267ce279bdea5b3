"""``GET /v1/pools`` and ``GET /v1/pools/{key}/report``."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.core.model import Attendee, Booking, BookingStatus
from tests.daemon.http.conftest import NOW, Site, assert_problem


def reserve(site: Site, booking_id: str, room: str, *, booked_at: datetime, hours: int) -> None:
    start = NOW + timedelta(days=1, hours=hours)
    with site.app.store.unit_of_work() as uow:
        uow.bookings.reserve(Booking(
            id=booking_id, event_type="consult", start=start, end=start + timedelta(minutes=30),
            owner="alice", rooms={"small": room}, booked_at=booked_at,
            attendee=Attendee("Ann", "ann@example.com")))
        uow.commit()


def test_the_pools_list_their_members_method_and_cycle(site: Site) -> None:
    response = site.get("/v1/pools")
    assert response.status_code == 200
    pools = {pool["key"]: pool for pool in response.json()["pools"]}
    assert set(pools) == {"small", "large"}
    small = pools["small"]
    assert [m["key"] for m in small["members"]] == ["room-a", "room-b"]
    assert small["members"][0]["name"] == "Room A (4 seats)"
    config = site.app.config.pools["small"]
    assert (small["assignment"], small["reporting_cycle"], small["timezone"]) == (
        config.assignment.value, config.reporting_cycle.value, config.timezone)


def test_the_report_needs_the_admin_scope(site: Site) -> None:
    assert_problem(site.get("/v1/pools/small/report"), 403, "/problems/forbidden")
    assert_problem(site.get("/v1/pools/small/report", token=None), 401, "/problems/unauthorized")
    assert site.get("/v1/pools/small/report", token="ops").status_code == 200


def test_the_report_counts_received_removed_and_swaps_of_this_cycle(site: Site) -> None:
    reserve(site, "b1", "room-a", booked_at=NOW - timedelta(hours=2), hours=0)
    reserve(site, "b2", "room-b", booked_at=NOW - timedelta(hours=1), hours=2)
    reserve(site, "b3", "room-a", booked_at=NOW - timedelta(days=60), hours=4)  # earlier cycle
    with site.app.store.unit_of_work() as uow:
        uow.bookings.set_status("b2", BookingStatus.CANCELLED, NOW)
        b1 = uow.bookings.get("b1")
        assert b1 is not None
        uow.bookings.move("b1", start=b1.start, end=b1.end, rooms={"small": "room-b"}, at=NOW)
        uow.commit()

    response = site.get("/v1/pools/small/report", token="ops")

    assert response.status_code == 200
    document = response.json()
    members = {m["room"]: m for m in document["members"]}
    assert [m["room"] for m in document["members"]] == ["room-a", "room-b"]
    assert {k: members["room-a"][k] for k in ("received", "removed", "reassigned_away",
                                              "reassigned_to")} == {
        "received": 1, "removed": 0, "reassigned_away": 1, "reassigned_to": 0}
    assert {k: members["room-b"][k] for k in ("received", "removed", "reassigned_away",
                                              "reassigned_to")} == {
        "received": 1, "removed": 1, "reassigned_away": 0, "reassigned_to": 1}
    assert document["total"] == {"received": 2, "removed": 1}
    assert document["pool"] == "small"
    assert document["cycle"]["unit"] == site.app.config.pools["small"].reporting_cycle.value
    start = datetime.fromisoformat(document["cycle"]["start"])
    end = datetime.fromisoformat(document["cycle"]["end"])
    assert start <= NOW < end
    assert datetime.fromisoformat(members["room-b"]["last_assigned_at"]) == NOW

    previous = site.get("/v1/pools/small/report?cycle=previous", token="ops").json()
    assert datetime.fromisoformat(previous["cycle"]["end"]) == start
    assert previous["total"] == {"received": 0, "removed": 0}
    by_date = site.get(f"/v1/pools/small/report?cycle={(NOW - timedelta(days=60)).date()}",
                       token="ops").json()
    assert by_date["total"]["received"] == 1


def test_the_busy_ratio_is_the_share_of_working_time_busy(site: Site) -> None:
    ratio = site.get("/v1/pools/small/report", token="ops").json()["members"][0]["busy_ratio"]
    # One working morning of the room (09:00-12:00 Berlin, weekdays) busy for an hour.
    site.busy("room-a", ("2027-03-25T09:00:00+01:00", "2027-03-25T10:00:00+01:00"))
    busier = site.get("/v1/pools/small/report", token="ops").json()["members"][0]["busy_ratio"]
    assert 0 < busier - ratio < 0.1


def test_an_unknown_pool_and_a_bad_cycle_are_problems(site: Site) -> None:
    document = assert_problem(site.get("/v1/pools/nope/report", token="ops"), 404,
                              "/problems/unknown-pool")
    assert "nope" in document["detail"]
    for bad in ("last", "2027-13-01", "x" * 20, "0001-01-01", "9999-12-31"):
        document = assert_problem(site.get(f"/v1/pools/small/report?cycle={bad}", token="ops"),
                                  422, "/problems/validation")
        assert document["errors"][0]["name"] == "cycle"
