"""Old events leave the log: older than WADESK_EVENT_RETENTION_HOURS, in bounded batches.

Ids grow with time, so the oldest rows are the lowest ids: each round deletes at most
``batch`` of them by primary key and never holds long locks. A client that resumes from an
id deleted meanwhile gets a ``reset`` event (see realtime/api.py).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from wadesk.background import BackgroundLoop
from wadesk.db import Database, utcnow
from wadesk.realtime.models import EventRecord


class EventRetention(BackgroundLoop):
    name = "event_retention"
    idle_seconds = 600.0

    def __init__(self, db: Database, *, retention_hours: float, batch: int = 5_000) -> None:
        super().__init__()
        self.db = db
        self.retention = timedelta(hours=retention_hours)
        self.batch = batch

    async def run_once(self) -> int:
        cutoff = utcnow() - self.retention
        async with self.db.session() as session:
            ids = (
                await session.scalars(
                    select(EventRecord.id)
                    .where(EventRecord.created_at < cutoff)
                    .order_by(EventRecord.id)
                    .limit(self.batch)
                )
            ).all()
            if not ids:
                return 0
            # A contiguous range from the oldest: deleting by range keeps the statement small.
            await session.execute(
                delete(EventRecord).where(EventRecord.id >= ids[0], EventRecord.id <= ids[-1])
            )
        return len(ids)
