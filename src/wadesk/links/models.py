"""Click-to-chat links, their clicks (counted per day, no raw IPs) and the conversations they
started."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow


class Link(Base):
    """A wa.me link with a prefilled message, served as the short URL ``/c/<slug>``."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("slug"),
        UniqueConstraint("ref_code"),
        UniqueConstraint("ad_source_id"),
        Index("ix_links_campaign", "campaign", "id"),
        # Rate limit of creation: links a user created in the last hour.
        Index("ix_links_creator", "created_by_user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64))
    # Short, human-friendly code carried in the prefilled text: "(ref: XMAS24)".
    ref_code: Mapped[str] = mapped_column(String(16))
    include_ref: Mapped[bool] = mapped_column(Boolean, default=True)
    ref_label: Mapped[str] = mapped_column(String(30), default="ref")
    phone_e164: Mapped[str] = mapped_column(String(32))
    inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("inboxes.id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str] = mapped_column(Text, default="")
    cta_label: Mapped[str] = mapped_column(String(60))
    # Language tag -> call to action, e.g. {"pt": "Fale conosco", "hi": "हमसे बात करें"}.
    cta_translations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    campaign: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    # A Click-to-WhatsApp ad's id (the webhook's referral.source_id) attributed to this link.
    ad_source_id: Mapped[str | None] = mapped_column(String(64))
    # The website button's look and schedule (see schemas.WidgetSettings).
    widget: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkClickDay(Base):
    """Clicks of one link on one UTC day, added to by every process's click buffer."""

    __tablename__ = "link_click_days"

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    # Distinct visitors of the day (salted daily hashes, see LinkClickVisitor).
    uniques: Mapped[int] = mapped_column(BigInteger, default=0)
    # Link-preview fetchers and crawlers: redirected, counted apart from people's clicks.
    bot_clicks: Mapped[int] = mapped_column(BigInteger, default=0)


class LinkClickVisitor(Base):
    """One visitor of one link on one day, as a keyed hash whose salt changes every day.

    Kept only for a few days (``WADESK_LINKS_VISITOR_RETENTION_DAYS``): the day's unique
    count is added to ``link_click_days.uniques`` as visitors are first seen.
    """

    __tablename__ = "link_click_visitors"
    __table_args__ = (Index("ix_link_click_visitors_day", "day"),)

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visitor: Mapped[str] = mapped_column(String(32), primary_key=True)


class LinkAttribution(Base):
    """A conversation that a link (or the ad attributed to it) started."""

    __tablename__ = "link_attributions"
    __table_args__ = (
        UniqueConstraint("conversation_id"),
        Index("ix_link_attributions_link", "link_id", "attributed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    matched_by: Mapped[str] = mapped_column(String(20))  # ref | referral | text
    attributed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The Click-to-WhatsApp ad the conversation came from, if it came from one.
    ad_source_id: Mapped[str | None] = mapped_column(String(64))
