"""Inboxes: one connected channel account (a WhatsApp number; later Messenger, email...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.crypto import EncryptedText
from wadesk.db import Base, BigId, UTCDateTime, utcnow


class Inbox(Base):
    __tablename__ = "inboxes"
    __table_args__ = (
        UniqueConstraint("webhook_key"),
        UniqueConstraint("channel_type", "external_account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_type: Mapped[str] = mapped_column(String(30), default="whatsapp")
    # WhatsApp: phone_number_id; the key the provider uses to say which account an event is for.
    external_account_id: Mapped[str] = mapped_column(String(64))
    business_account_id: Mapped[str | None] = mapped_column(String(64))  # WABA id
    display_phone_number: Mapped[str | None] = mapped_column(String(32))
    graph_url: Mapped[str] = mapped_column(String(300))
    api_version: Mapped[str] = mapped_column(String(16))
    access_token: Mapped[str] = mapped_column(EncryptedText)
    app_secret: Mapped[str] = mapped_column(EncryptedText)
    verify_token: Mapped[str] = mapped_column(EncryptedText)
    # Public, unguessable part of this inbox's own webhook URL.
    webhook_key: Mapped[str] = mapped_column(String(64))
    send_rate_per_s: Mapped[float | None] = mapped_column(Float)
    pair_rate_per_s: Mapped[float | None] = mapped_column(Float)
    pair_burst: Mapped[int | None] = mapped_column(Integer)
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    attention_reason: Mapped[str | None] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
