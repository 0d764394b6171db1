"""The event log: every committed event, with an id that becomes visible in commit order.

Ids come from the one-row ``event_sequence`` counter, so they are gap-free and a reader tailing
``id > last`` can never pass an id that commits later (docs/decisions/0030). On SQLite the
producing transaction takes them right before its commit; on PostgreSQL it stages its events
and the sequencer, the log's only writer there, gives them ids after that commit (0031).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wadesk.db import Base, BigId, UTCDateTime, utcnow


class EventRecord(Base):
    __tablename__ = "events"

    # Assigned from event_sequence, never by the database.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(60))
    # No foreign keys: the log is history that outlives what it mentions, and inserts
    # stay cheap (the primary key is the only index; retention deletes by id order).
    inbox_id: Mapped[int | None] = mapped_column(BigInteger)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventSequence(Base):
    """One row (id 1): the last event id handed out. Its row lock orders committing writers."""

    __tablename__ = "event_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(BigInteger, default=0)


class StagedEvent(Base):
    """PostgreSQL: events of committed (or committing) transactions waiting for the sequencer,
    which moves them into ``events`` in ``id`` order and deletes them here."""

    __tablename__ = "events_staged"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    inbox_id: Mapped[int | None] = mapped_column(BigInteger)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
