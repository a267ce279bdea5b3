"""A local Microsoft Graph (Outlook calendars) and identity-platform token endpoint for tests.

The agreed face is in notes/GRAPH_FAKE_API.md; ``GraphFake`` is in ``fake.py``.
"""

from tests.fakes.graph.calendars import RoomAnswer
from tests.fakes.graph.fake import GraphFake

__all__ = ["GraphFake", "RoomAnswer"]
