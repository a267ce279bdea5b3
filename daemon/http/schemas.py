"""The answers of the hook as Pydantic models: the OpenAPI document's schemas.

The slots answer is built by ``daemon.documents.slots_document`` (shared
with ``calpool slots --json``) and sent as it is; :class:`SlotsDocument`
describes it for clients, and the tests check the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class RoomDocument(BaseModel):
    key: str
    name: str = Field(description="the room's configured name, else its key")
    capacity: int | None = Field(description="shown to clients; not used for assignment")


class EventTypeDocument(BaseModel):

    key: str
    title: str = Field(description="the event title template, e.g. 'Consultation with "
                                   "{attendee_name}'")
    duration: str = Field(description="a duration string like '30m' or '1h30m'")
    owner: str
    with_: list[str] = Field(
        serialization_alias="with", description="further persons who must all be free"
    )
    pools: dict[str, list[RoomDocument]] = Field(
        description="each pool of the event type with its members in priority order"
    )


class EventTypesDocument(BaseModel):
    event_types: list[EventTypeDocument]


class SlotDocument(BaseModel):
    start: datetime = Field(description="ISO 8601 with the offset of the asked zone")
    end: datetime = Field(description="start + duration (buffers excluded)")
    rooms_available: dict[str, list[str]] = Field(
        description="per pool, the free rooms in priority order"
    )


class StaleCalendarDocument(BaseModel):
    calendar: str
    last_synced: datetime | None = Field(description="the last successful sync, if any")
    reason: Annotated[str, Field(
        pattern=r"^(never_synced|failed|stale|\d+ objects? unreadable)$",
        description="never_synced, failed or stale; for a calendar otherwise in order "
                    "'N objects unreadable': it holds events calpool could not read, whose "
                    "busy time is missing (see calpool status)")]


class SlotsDocument(BaseModel):
    event_type: str
    timezone: str = Field(description="the IANA zone the instants are written in")
    slots: list[SlotDocument] = Field(description="every slot starting in [start, end), by start")
    stale_calendars: list[StaleCalendarDocument] = Field(
        description="calendars of the event type whose cached busy time may be out of date"
    )


class HealthDocument(BaseModel):
    status: Literal["ok"]


class CalendarSyncDocument(BaseModel):
    calendar: str
    last_synced: datetime | None
    last_attempt: datetime | None


class ReadinessDocument(BaseModel):
    status: Literal["ready"]
    failed: list[CalendarSyncDocument] = Field(description="calendars whose last sync failed")
    stale: list[CalendarSyncDocument] = Field(
        description="calendars not synced successfully within sync.stale_after"
    )


class PoolDocument(BaseModel):
    key: str
    members: list[RoomDocument] = Field(description="in priority (config) order")
    assignment: str = Field(description="longest_idle, priority, round_robin, least_booked "
                                        "or random")
    reporting_cycle: str = Field(description="day, week or month, in the pool's zone")
    timezone: str


class PoolsDocument(BaseModel):
    pools: list[PoolDocument]


class CycleDocument(BaseModel):
    unit: str = Field(description="day, week or month")
    start: datetime = Field(description="local midnight in the pool's zone (inclusive)")
    end: datetime = Field(description="the next cycle's start (exclusive)")


class MemberReportDocument(BaseModel):
    room: str
    received: int = Field(description="bookings assigned this room when they were booked in "
                                      "the cycle (booking time, as the assignment methods "
                                      "count)")
    removed: int = Field(description="its bookings cancelled in the cycle")
    reassigned_away: int = Field(description="swapped out for another member in the cycle")
    reassigned_to: int = Field(description="swapped in for another member in the cycle")
    last_assigned_at: datetime | None = Field(
        description="its latest assignment before the cycle's end")
    busy_ratio: float = Field(description="share of the cycle's working time it was busy "
                                          "(cached events and bookings), 0 to 1")


class TotalDocument(BaseModel):
    received: int
    removed: int


class PoolReportDocument(BaseModel):
    pool: str
    assignment: str
    cycle: CycleDocument
    members: list[MemberReportDocument]
    total: TotalDocument
