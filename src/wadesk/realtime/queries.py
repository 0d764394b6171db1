"""Reads of the event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.realtime.models import EventRecord, EventSequence


@dataclass(slots=True)
class LoggedEvent:
    """One row of the log, with its SSE frame built once for every stream that sends it."""

    id: int
    kind: str
    inbox_id: int | None
    conversation_id: int | None
    payload: dict[str, Any]
    _frame: bytes | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "inbox_id": self.inbox_id,
            "conversation_id": self.conversation_id,
            "payload": self.payload,
        }

    def frame(self) -> bytes:
        if self._frame is None:
            kind = self.kind.replace("\n", " ").replace("\r", " ")
            self._frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (
                self.id,
                kind.encode(),
                orjson.dumps(self.as_dict()),
            )
        return self._frame


async def current_event_id(session: AsyncSession) -> int:
    """The id of the last committed event (0 when there is none yet).

    A page renders it so that its browser resumes the stream from the page's own snapshot:
    call it BEFORE reading what the page shows (an event that lands in between is then sent
    again, never lost; the view applies events idempotently)."""
    last = await session.scalar(select(EventSequence.last).where(EventSequence.id == 1))
    return int(last or 0)


async def events_after(session: AsyncSession, after: int, limit: int) -> list[LoggedEvent]:
    """Events with id > ``after``, oldest first (the primary key is the only index used)."""
    rows = await session.execute(
        select(
            EventRecord.id,
            EventRecord.kind,
            EventRecord.inbox_id,
            EventRecord.conversation_id,
            EventRecord.payload,
        )
        .where(EventRecord.id > after)
        .order_by(EventRecord.id)
        .limit(limit)
    )
    return [
        LoggedEvent(int(i), str(k), inbox, conversation, dict(payload or {}))
        for i, k, inbox, conversation, payload in rows.tuples()
    ]
