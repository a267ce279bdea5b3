"""Microsoft 365 (Exchange Online calendars) through msal and Microsoft Graph."""

from connectors.microsoft.account import MicrosoftAccount, RetryPolicy
from connectors.microsoft.connector import MicrosoftConnector

__all__ = ["MicrosoftAccount", "MicrosoftConnector", "RetryPolicy"]
