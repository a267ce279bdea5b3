"""The Google Calendar connector (Calendar API v3 through
google-api-python-client and google-auth)."""

from connectors.google.account import GoogleAccount, RetryPolicy, event_id
from connectors.google.connector import GoogleConnector

__all__ = ["GoogleAccount", "GoogleConnector", "RetryPolicy", "event_id"]
