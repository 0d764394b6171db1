"""Conversations, messages, labels, and status updates waiting for their message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow

CONVERSATION_STATUSES = ("open", "pending", "snoozed", "resolved")
PRIORITIES = ("none", "low", "medium", "high", "urgent")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # At most one unresolved conversation per contact and inbox: concurrent first
        # messages from the same customer can never open two.
        Index(
            "uq_conversations_active",
            "inbox_id",
            "contact_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_conversations_inbox_activity", "inbox_id", "last_activity_at", "id"),
        Index("ix_conversations_activity", "last_activity_at", "id"),
        # The inbox list's "Mine" folder: newest activity first among one person's conversations.
        Index("ix_conversations_assignee_activity", "assignee_id", "last_activity_at", "id"),
        # Lists by status (the inbox opens on "open"), newest activity first.
        Index("ix_conversations_status_activity", "status", "last_activity_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(20), default="none")
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_preview: Mapped[str | None] = mapped_column(String(200))
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    color: Mapped[str] = mapped_column(String(7), default="#6b7280")


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True
    )


# "note": a private note of the team, never sent (see actions.do_add_note).
MESSAGE_STATUSES = ("received", "queued", "sent", "delivered", "read", "failed", "note")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Provider ids are unique per inbox: retries and concurrent duplicates insert nothing.
        UniqueConstraint("inbox_id", "external_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        # Search by message text ("q" of the conversation list): a trigram GIN index on
        # PostgreSQL (migration 0004). On SQLite it is declared empty (WHERE 0): search there
        # scans, and message text is not indexed twice.
        Index(
            "ix_messages_text_trgm",
            "text",
            postgresql_using="gin",
            postgresql_ops={"text": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
        Index(
            "ix_messages_media_pending",
            "id",
            sqlite_where=text("media_status = 'pending'"),
            postgresql_where=text("media_status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    type: Mapped[str] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(128))
    reply_to_external_id: Mapped[str | None] = mapped_column(String(128))
    referral: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_title: Mapped[str | None] = mapped_column(String(500))
    # Media: the provider's id, then where we stored the bytes once downloaded.
    media_id: Mapped[str | None] = mapped_column(String(128))
    media_mime: Mapped[str | None] = mapped_column(String(120))
    media_filename: Mapped[str | None] = mapped_column(String(255))
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_sha256: Mapped[str | None] = mapped_column(String(64))
    media_key: Mapped[str | None] = mapped_column(String(255))
    media_status: Mapped[str | None] = mapped_column(String(12))  # pending | stored | failed
    media_attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingStatus(Base):
    """A status update whose message we do not know (yet): applied when the message appears."""

    __tablename__ = "pending_statuses"
    __table_args__ = (UniqueConstraint("inbox_id", "external_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(12))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_title: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """An API write's Idempotency-Key: the same key never sends twice."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Mention(Base):
    """A colleague @mentioned in a private note: theirs to list and mark read."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id"),
        Index("ix_mentions_user", "user_id", "read_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
