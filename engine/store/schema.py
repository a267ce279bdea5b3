"""The tables, as SQLAlchemy Core metadata the repositories query.

The migrations under ``migrations/versions`` create these tables; a test
compares a migrated database with this metadata, so the two cannot drift.
Two things live only in the migrations because SQLAlchemy metadata cannot
express them portably: PostgreSQL's ``btree_gist`` extension and the
exclusion constraint on ``reservations`` (see ``0002``).

Sync tables name a calendar by the surrogate ``calendars.id`` (compact rows,
cascade on removal); booking tables name calendars by their config key,
because a booking and its history outlive a calendar's removal from config.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from engine.store.instants import UTCInstant

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the fast rowid alias.
RowId = BigInteger().with_variant(Integer(), "sqlite")

BOOKING_STATUSES = ("pending", "confirmed", "failed", "cancelled")
OUTBOX_STATES = ("pending", "done", "dead")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---- revision 0001: the sync cache -------------------------------------------------------

calendars = Table(
    "calendars",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("cursor", Text, nullable=True),
    Column("window_start", UTCInstant, nullable=True),
    Column("window_end", UTCInstant, nullable=True),
    Column("last_success_at", UTCInstant, nullable=True),
    Column("last_attempt_at", UTCInstant, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCInstant, nullable=True),
    Column("version", BigInteger, nullable=False, server_default="0"),
    # JSON {source: reason} of the objects the last syncs could not read.
    Column("unreadable", Text, nullable=True),
)

busy_events = Table(
    "busy_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "calendar_id",
        RowId,
        ForeignKey("calendars.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("source", Text, nullable=False),
    Column("instance", Text, nullable=False, server_default=""),
    Column("uid", Text, nullable=False),
    Column("start_at", UTCInstant, nullable=False),
    Column("end_at", UTCInstant, nullable=False),
    Column("busy", Boolean, nullable=False),
    Column("etag", Text, nullable=False, server_default=""),
    Column("booking_id", String(64), nullable=True),
    UniqueConstraint("calendar_id", "source", "instance"),
    CheckConstraint("end_at >= start_at", name="ordered"),
    Index(None, "calendar_id", "start_at"),
)

push_channels = Table(
    "push_channels",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column(
        "calendar_id",
        RowId,
        ForeignKey("calendars.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("resource_id", Text, nullable=False, server_default=""),
    Column("token_sha256", String(64), nullable=False),
    Column("expires_at", UTCInstant, nullable=False),
    Column("created_at", UTCInstant, nullable=False),
    Column("calendar_ref", Text, nullable=False, server_default=""),  # revision 0005
    Index(None, "calendar_id"),
)

# ---- revision 0002: bookings, outbox, links, idempotency ---------------------------------

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("start_at", UTCInstant, nullable=False),
    Column("end_at", UTCInstant, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("booked_at", UTCInstant, nullable=False),
    Column("attendee_name", Text, nullable=True),
    Column("attendee_email", Text, nullable=True),
    Column("notes", Text, nullable=False, server_default=""),
    CheckConstraint("end_at > start_at", name="ordered"),
    CheckConstraint("status IN ('pending', 'confirmed', 'failed', 'cancelled')", name="status"),
    Index(None, "start_at"),
    Index(None, "owner", "start_at"),
)

booking_with = Table(
    "booking_with",
    metadata,
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("calendar_key", String(200), nullable=False),
)

booking_rooms = Table(
    "booking_rooms",
    metadata,
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("pool", String(200), primary_key=True),
    Column("calendar_key", String(200), nullable=False),
    Index(None, "pool", "calendar_key"),
)

# Every room a booking held: from when, how it came (booked, reassigned),
# and when and why it ended (reassigned away, cancelled, failed).  Written by
# the booking repository only, in the transaction that changes the rooms.
room_assignments = Table(
    "room_assignments",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("pool", String(200), nullable=False),
    Column("room", String(200), nullable=False),
    Column("assigned_at", UTCInstant, nullable=False),
    Column("how", String(16), nullable=False),
    Column("ended_at", UTCInstant, nullable=True),
    Column("ended_how", String(16), nullable=True),
    CheckConstraint("how IN ('booked', 'reassigned')", name="how"),
    CheckConstraint("ended_how IS NULL OR ended_how IN ('reassigned', 'cancelled', 'failed')",
                    name="ended_how"),
    Index(None, "pool", "assigned_at"),
    Index(None, "pool", "ended_at"),
    Index(None, "booking_id"),
)

booking_history = Table(
    "booking_history",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", UTCInstant, nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index(None, "booking_id", "id"),
)

# One row per calendar a booking holds.  ``active`` is false once the booking
# is cancelled or failed; PostgreSQL's exclusion constraint covers active rows.
reservations = Table(
    "reservations",
    metadata,
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("calendar_key", String(200), primary_key=True),
    Column("start_at", UTCInstant, nullable=False),
    Column("end_at", UTCInstant, nullable=False),
    Column("active", Boolean, nullable=False),
    # revision 0009: the calendar's version when this row last changed
    Column("version", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("end_at > start_at", name="ordered"),
    Index(None, "calendar_key", "start_at"),
    Index(None, "calendar_key", "version"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("kind", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", UTCInstant, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_until", UTCInstant, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCInstant, nullable=False),
    Column("finished_at", UTCInstant, nullable=True),
    CheckConstraint("state IN ('pending', 'done', 'dead')", name="state"),
    Index(None, "state", "due_at"),
    Index(None, "booking_id"),
)

links = Table(
    "links",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("created_at", UTCInstant, nullable=False),
    Column("expires_at", UTCInstant, nullable=False),
    Column("attendee_name", Text, nullable=True),
    Column("attendee_email", Text, nullable=True),
    Column("used_at", UTCInstant, nullable=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("revoked_at", UTCInstant, nullable=True),
    Index(None, "booking_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("token_name", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("created_at", UTCInstant, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("completed_at", UTCInstant, nullable=True),
    # The holder name of the process that claimed the key (``processes``).
    Column("claimed_by", String(200), nullable=True),
    Index(None, "created_at"),
)


# What happened to a booking, written by the booking repository in the
# transaction of the change: created, confirmed, rescheduled, room_changed,
# cancelled, failed.  ``dispatched`` once turned into webhook deliveries.
booking_events = Table(
    "booking_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("type", String(32), nullable=False),
    Column("at", UTCInstant, nullable=False),
    Column("dispatched", Boolean, nullable=False, server_default=false()),
    Index(None, "dispatched", "id"),
    Index(None, "booking_id"),
)

# One signed POST of one booking event to one endpoint (``endpoint``: a
# digest of its URL).  ``body`` is rendered at the first attempt and sent
# unchanged on every retry.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "event_id",
        RowId,
        ForeignKey("booking_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("endpoint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", UTCInstant, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_until", UTCInstant, nullable=True),
    Column("body", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCInstant, nullable=False),
    Column("finished_at", UTCInstant, nullable=True),
    UniqueConstraint("event_id", "endpoint"),
    CheckConstraint("state IN ('pending', 'done', 'failed')", name="state"),
    Index(None, "state", "due_at"),
)

# The attendee's emails (revision 0010): one row per message.  The manage
# issuer writes a ``waiting`` confirmation row, holding the raw manage token,
# in the booking's transaction when mail is on; the booking's events then
# move it (``confirmed`` → ``pending``; ``failed`` → ``dropped``) and add
# rescheduled and cancelled rows.  ``message`` is rendered at the first
# attempt and sent unchanged on every retry; the token and the message are
# cleared once the row is finished.
email_deliveries = Table(
    "email_deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("manage_token", String(200), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", UTCInstant, nullable=True),
    Column("claimed_by", String(200), nullable=True),
    Column("claimed_until", UTCInstant, nullable=True),
    Column("message", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCInstant, nullable=False),
    Column("finished_at", UTCInstant, nullable=True),
    CheckConstraint("state IN ('waiting', 'pending', 'done', 'failed', 'dropped')",
                    name="state"),
    Index(None, "state", "due_at"),
    Index(None, "booking_id"),
)

# The customer's manage links (revision 0005): only a digest of each token.
manage_tokens = Table(
    "manage_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column(
        "booking_id",
        String(64),
        ForeignKey("bookings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", UTCInstant, nullable=False),
    Index(None, "booking_id"),
)

# ---- revision 0007: push plumbing --------------------------------------------------------

sync_requests = Table(
    "sync_requests",
    metadata,
    Column(
        "calendar_id",
        RowId,
        ForeignKey("calendars.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("requested", BigInteger, nullable=False, server_default="0"),
    Column("served", BigInteger, nullable=False, server_default="0"),
    Column("requested_at", UTCInstant, nullable=True),
)

push_messages = Table(
    "push_messages",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column("message", String(200), primary_key=True),
    Column("received_at", UTCInstant, nullable=False),
    Index(None, "received_at"),
)


# ---- revision 0008: delivery records -----------------------------------------------------

deliveries = Table(
    "deliveries",
    metadata,
    Column("booking_id", String(64), ForeignKey("bookings.id", ondelete="CASCADE"),
           primary_key=True),
    Column("calendar", String(200), primary_key=True),
    Column("how", String(16), nullable=False),  # written | invited
    # pending | written | accepted | declined | removed
    Column("state", String(16), nullable=False),
    Column("source", String(1024), nullable=False, server_default=""),
    Column("etag", String(512), nullable=False, server_default=""),
    Column("sequence", Integer, nullable=False, server_default="0"),
    Column("answer", String(16), nullable=True),  # an invited room's answer as last seen
    Column("answered_at", UTCInstant, nullable=True),
    Column("since", UTCInstant, nullable=False),  # when this calendar got its part in the booking
    Column("updated_at", UTCInstant, nullable=False),
    CheckConstraint("how IN ('written', 'invited')", name="how"),
    CheckConstraint("state IN ('pending', 'written', 'accepted', 'declined', 'removed')",
                    name="state"),
    Index(None, "how", "state"),
)


# ---- revision 0009: several processes on one database ------------------------------------

leases = Table(
    "leases",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("holder", String(200), nullable=True),
    Column("expires_at", UTCInstant, nullable=False),
    Column("heartbeat_at", UTCInstant, nullable=True),
)

config_fingerprints = Table(
    "config_fingerprints",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("calendars", Text, nullable=False),  # JSON list of the calendar keys it names
    Column("first_seen_at", UTCInstant, nullable=False),
)

processes = Table(
    "processes",
    metadata,
    Column("holder", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("host", String(255), nullable=False, server_default=""),
    Column("started_at", UTCInstant, nullable=False),
    Column("seen_at", UTCInstant, nullable=False),
)
