"""Contacts (people) and their identities on each channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("phone_key"),
        # Search by name (the inbox list's "q"): trigram GIN on PostgreSQL (migration 0004);
        # declared empty on SQLite (WHERE 0), where search scans.
        Index(
            "ix_contacts_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone_e164: Mapped[str | None] = mapped_column(String(32))
    # Canonical digits (see contacts/phone.py): one person, one key, whichever form was seen.
    phone_key: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where the contact first came from, and most recently (a link, an ad): links/attribution.py
    first_source: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    last_source: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactIdentity(Base):
    """How a contact is known on one channel: a WhatsApp wa_id, a PSID, an email address."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("channel_type", "identity_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel_type: Mapped[str] = mapped_column(String(30))
    identity_key: Mapped[str] = mapped_column(String(320))
    # The exact address last seen from the provider (what replies must be sent to).
    address: Mapped[str] = mapped_column(String(320))
    profile_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
