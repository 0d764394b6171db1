"""Routing state, kept in tables of its own: agents, per-inbox settings, the waiting queue,
per-conversation routing facts (team, language, priority tags, first-response target), rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow

AVAILABILITY = ("online", "busy", "away", "offline")
STRATEGIES = ("least_loaded", "round_robin")
OFFLINE_BEHAVIOURS = ("keep", "return")
PRIORITY_TAGS = ("priority", "vip", "frequent")


class AgentState(Base):
    """One person's routing state. Their load is never stored: it is counted from the
    conversations table while this row is locked (see actions.py), so it cannot drift."""

    __tablename__ = "routing_agents"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    availability: Mapped[str] = mapped_column(String(10), default="offline")
    # Set when the presence sweep took the person offline: what to restore when they return.
    auto_offline_from: Mapped[str | None] = mapped_column(String(10))
    capacity: Mapped[int | None] = mapped_column(Integer)  # None: the inbox's, then the default
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 639-1 codes
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_total: Mapped[int] = mapped_column(Integer, default=0)


class InboxRouting(Base):
    """An inbox's routing settings (no row: the defaults)."""

    __tablename__ = "routing_inbox_settings"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    strategy: Mapped[str] = mapped_column(String(20), default="least_loaded")
    capacity: Mapped[int | None] = mapped_column(Integer)
    sticky_days: Mapped[int] = mapped_column(Integer, default=0)  # 0: no stickiness
    offline_behaviour: Mapped[str] = mapped_column(String(10), default="keep")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingConfig(Base):
    """Organisation-wide routing settings (one row, id 1; no row: the defaults)."""

    __tablename__ = "routing_config"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    default_capacity: Mapped[int] = mapped_column(Integer, default=5)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    returns_threshold: Mapped[int] = mapped_column(Integer, default=2)
    spend_threshold: Mapped[float] = mapped_column(Float, default=1000.0)
    frequent_threshold: Mapped[int] = mapped_column(Integer, default=3)
    first_response_seconds: Mapped[int] = mapped_column(Integer, default=60)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueEntry(Base):
    """A conversation waiting for an agent. Served by rank (priority) then waiting time."""

    __tablename__ = "routing_queue"
    __table_args__ = (Index("ix_routing_queue_order", "rank", "enqueued_at", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(8))
    sticky_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rank: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationRouting(Base):
    """What routing decided about a conversation: team, language, priority tags, rules that
    matched, and its first-response target."""

    __tablename__ = "routing_conversations"
    __table_args__ = (
        Index("ix_routing_conversations_due", "first_response_at", "first_response_due_at"),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(8))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    matched_rules: Mapped[list[int]] = mapped_column(JSON, default=list)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RoutingRule(Base):
    """Ordered: conditions (all must hold) → actions. See docs/routing.md for the shapes."""

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_position", "position", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    stop: Mapped[bool] = mapped_column(Boolean, default=False)  # no later rule after a match
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    match_count: Mapped[int] = mapped_column(Integer, default=0)
    last_matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
