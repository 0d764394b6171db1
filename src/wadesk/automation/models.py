"""Automation: rules per inbox, HTTP integrations, jobs, per-customer state, business hours,
quick replies and WhatsApp message templates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.crypto import EncryptedText
from wadesk.db import Base, BigId, UTCDateTime, utcnow

# "waiting": the customer's last message had no reply for the rule's ``minutes`` (waiting.py).
TRIGGERS = ("message", "opened", "resolved", "waiting")
JOB_STATES = ("pending", "done", "failed")


class AutomationRule(Base):
    """One ordered rule of an inbox: when (trigger) + if (conditions) → then (actions)."""

    __tablename__ = "automation_rules"
    __table_args__ = (Index("ix_automation_rules_inbox", "inbox_id", "position", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[str] = mapped_column(String(20), default="message")
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Answer even when a person has taken the conversation over (assigned, or replied).
    after_handoff: Mapped[bool] = mapped_column(Boolean, default=False)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)
    last_matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Integration(Base):
    """An HTTP endpoint rules may call (e.g. the company's order API)."""

    __tablename__ = "automation_integrations"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # May hold {{match.x}} / {{contact.x}} placeholders (URL-encoded when rendered).
    url: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(8), default="GET")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    secret_header: Mapped[str | None] = mapped_column(String(100))
    secret: Mapped[str | None] = mapped_column(EncryptedText)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=3.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AutomationJob(Base):
    """Work queued inside the transaction that stored its cause; claimed with a lease."""

    __tablename__ = "automation_jobs"
    __table_args__ = (
        Index(
            "ix_automation_jobs_due",
            "next_attempt_at",
            "id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(20))
    opened: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AutomationContactState(Base):
    """Per inbox and customer: greeting/away bookkeeping and a pending question."""

    __tablename__ = "automation_contact_states"
    __table_args__ = (UniqueConstraint("inbox_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    last_greeting_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_away_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rule that asked the customer a question and waits for the answer.
    pending_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="SET NULL")
    )
    pending_step: Mapped[int | None] = mapped_column(Integer)
    pending_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Loop protection: automated replies in the current 10-minute window, and the last one.
    replies_window_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replies_in_window: Mapped[int] = mapped_column(Integer, default=0)
    last_reply_text: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InboxAutomation(Base):
    """An inbox's business hours, greeting and away message."""

    __tablename__ = "automation_inbox_settings"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # {"mon": [["09:00", "17:00"]], ...}; a day missing or empty is closed.
    schedule: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates, local
    greeting_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    greeting_text: Mapped[str] = mapped_column(Text, default="")
    greeting_after_days: Mapped[int] = mapped_column(Integer, default=30)
    away_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    away_text: Mapped[str] = mapped_column(Text, default="")
    # The FAQ bot: answers at or above the threshold (0-100), hands near misses to a person.
    faq_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    faq_threshold: Mapped[int] = mapped_column(Integer, default=80)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FaqEntry(Base):
    """A question and its answer for the FAQ bot; inbox_id None: shared by every inbox."""

    __tablename__ = "automation_faq_entries"
    __table_args__ = (Index("ix_automation_faq_entries_inbox", "inbox_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(500))
    # Other phrasings of the same question, matched like the question itself.
    alternatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)  # may hold {{contact.first_name}} placeholders
    language: Mapped[str | None] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)
    last_matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FaqDay(Base):
    """An FAQ entry's counters per UTC day: its hit rate over time."""

    __tablename__ = "automation_faq_days"

    faq_id: Mapped[int] = mapped_column(
        ForeignKey("automation_faq_entries.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)


class QuickReply(Base):
    """A saved answer agents insert with a shortcut (``/refund``); inbox_id None: shared."""

    __tablename__ = "quick_replies"
    __table_args__ = (Index("ix_quick_replies_shortcut", "shortcut"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    shortcut: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    media_link: Mapped[str | None] = mapped_column(String(2000))
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MessageTemplate(Base):
    """A WhatsApp message template of an inbox's business account, as last synced."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("inbox_id", "name", "language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rejected_reason: Mapped[str | None] = mapped_column(String(200))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Flow(Base):
    """A guided flow of an inbox (automation/flows.py). ``definition`` is the current version;
    every version is kept in ``FlowVersion``, so a customer mid-flow stays on the version
    they started. The counters are totals over all versions."""

    __tablename__ = "automation_flows"
    __table_args__ = (UniqueConstraint("inbox_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FlowVersion(Base):
    """Every saved definition of a flow, never changed afterwards."""

    __tablename__ = "automation_flow_versions"

    flow_id: Mapped[int] = mapped_column(
        ForeignKey("automation_flows.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlowState(Base):
    """Where a conversation is in a flow (at most one flow at a time). Past ``expires_at``
    the flow has timed out: the next message is handled as if there were no flow."""

    __tablename__ = "automation_flow_states"
    __table_args__ = (Index("ix_automation_flow_states_expires", "expires_at"),)

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    flow_id: Mapped[int] = mapped_column(
        ForeignKey("automation_flows.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(64))
    # Answers not understood at this step so far (the step is asked again up to "retries").
    retries: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
