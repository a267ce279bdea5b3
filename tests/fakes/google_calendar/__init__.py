"""A local Google Calendar API v3 and Google OAuth token endpoint for tests.

The agreed face is in notes/GOOGLE_FAKE_API.md; ``GoogleCalendarFake`` is in ``fake.py``.
"""

from tests.fakes.google_calendar.calendars import RoomAnswer
from tests.fakes.google_calendar.fake import GoogleCalendarFake

__all__ = ["GoogleCalendarFake", "RoomAnswer"]
