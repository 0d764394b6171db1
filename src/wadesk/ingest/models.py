"""Raw webhook deliveries: stored before we answer 200, processed after commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow

DELIVERY_STATUSES = ("pending", "processed", "unprocessable")


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_pending",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Only the unprocessable ones are listed (by admins); processed rows, nearly all of
        # them, stay out of any status index so marking them done stays cheap.
        Index(
            "ix_webhook_deliveries_unprocessable",
            "id",
            sqlite_where=text("status = 'unprocessable'"),
            postgresql_where=text("status = 'unprocessable'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_type: Mapped[str] = mapped_column(String(30))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The provider's signature header, kept so processing can check that the inbox an event
    # is routed to is the one whose secret signed it.
    signature: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
