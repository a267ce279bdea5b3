"""CalDAV (RFC 4791, RFC 6578) through the ``caldav`` library."""

from connectors.caldav.account import CalDAVAccount, RetryPolicy, SyncMethod
from connectors.caldav.connector import CalDAVConnector

__all__ = ["CalDAVAccount", "CalDAVConnector", "RetryPolicy", "SyncMethod"]
