"""Append-only, tamper-evident audit log: who did what, to what, when, from where.

Each row stores its place in the chain (``chain_seq``), the hash of the row before it
(``prev_hash``) and its own ``hash``, an HMAC of ``prev_hash`` and its content (see
:mod:`wadesk.audit.chain`). Editing or removing a row breaks the chain at that row; ``wadesk
audit verify`` names it. On PostgreSQL a row is written unchained (the three columns NULL) and
the chainer links it right after its transaction commits (docs/decisions/0014); a trigger
refuses every UPDATE except that one linking, and every DELETE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_target", "target_type", "target_id", "id"),
        Index("ix_audit_events_actor", "actor_type", "actor_id", "id"),
        Index("ix_audit_events_chain_seq", "chain_seq", unique=True),
        # The chainer's work list: small, because rows leave it within a second.
        Index(
            "ix_audit_events_unchained",
            "id",
            postgresql_where=text("hash IS NULL"),
            sqlite_where=text("hash IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(20))  # user | token | system | customer
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
