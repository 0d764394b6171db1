"""PostgreSQL: the event log's only writer (docs/decisions/0031).

Transactions stage their events in ``events_staged`` without taking any lock. This loop, run
by every process, moves what is committed there into ``events`` in one short transaction per
round: it locks the ``event_sequence`` counter row, bumps it once for the whole round, inserts
the events with the ids ``last+1 ..`` in staging order, and deletes them from staging. Because
only these rounds write the log, and the counter's lock lets one round commit before the next
reads, ids stay gap-free and visible in commit order, so a reader tailing ``id > last`` never
passes an id that commits later. Writers do not hold the counter's row lock across their own
commit: they keep PostgreSQL's group commit, and a slow one does not hold up everyone else.

The loop is woken after every commit that staged events (this process's, and others' through
Redis) and polls every ``idle_seconds`` in case a notification was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.background import BackgroundLoop
from wadesk.db import CREATE_EVENT_COUNTER, Database, utcnow
from wadesk.metrics import EVENTS_WAITING_SECONDS
from wadesk.realtime.models import EventRecord, StagedEvent

BATCH = 5_000

_LOCK_COUNTER = text("SELECT last FROM event_sequence WHERE id = 1 FOR UPDATE")
_SET_LAST = text("UPDATE event_sequence SET last = :last WHERE id = 1")


async def sequence_batch(session: AsyncSession, *, batch: int = BATCH) -> int:
    """Give ids to up to ``batch`` staged events of committed transactions; how many.

    The counter row is locked first, so that a second sequencer (``sequence_pending`` beside
    the loop) reads the staging table only after the first one's round is committed."""
    last = await session.scalar(_LOCK_COUNTER)
    if last is None:  # the counter row is missing (tables emptied, a partial restore)
        await session.execute(CREATE_EVENT_COUNTER)
        last = await session.scalar(_LOCK_COUNTER)
    staged = cast(Table, StagedEvent.__table__)
    rows = (
        await session.execute(
            select(
                staged.c.id,
                staged.c.kind,
                staged.c.inbox_id,
                staged.c.conversation_id,
                staged.c.payload,
                staged.c.created_at,
            )
            .order_by(staged.c.id)
            .limit(batch)
        )
    ).all()
    if not rows:
        return 0
    first = int(last) + 1
    await session.execute(_SET_LAST, {"last": int(last) + len(rows)})
    await session.execute(
        cast(Table, EventRecord.__table__).insert(),
        [
            {
                "id": first + offset,
                "kind": row.kind,
                "inbox_id": row.inbox_id,
                "conversation_id": row.conversation_id,
                "payload": row.payload,
                "created_at": row.created_at,
            }
            for offset, row in enumerate(rows)
        ],
    )
    await session.execute(delete(staged).where(staged.c.id.in_([row.id for row in rows])))
    return len(rows)


async def sequence_pending(db: Database) -> int:
    """Sequence everything staged so far (each batch its own transaction); how many."""
    total = 0
    while True:
        async with db.session() as session:
            done = await sequence_batch(session)
        total += done
        if done < BATCH:
            return total


class EventSequencer(BackgroundLoop):
    """``on_sequenced`` is called after each round that gave ids (to wake the SSE feeds of
    this process and, through Redis, of the others)."""

    name = "event.sequencer"

    def __init__(
        self,
        db: Database,
        *,
        on_sequenced: Callable[[], Any] | None = None,
        idle_seconds: float = 0.25,
    ) -> None:
        super().__init__()
        self.db = db
        self.on_sequenced = on_sequenced
        self.idle_seconds = idle_seconds

    async def run_once(self) -> int:
        """One transaction: a look for staged rows (read-only, no lock when there is none),
        then the round. Every process runs it when woken: the counter row's lock makes a
        second one wait for the first's round and then take what committed meanwhile, which
        is also what keeps the other processes' events from waiting for the next poll."""
        async with self.db.session() as session:
            # By the primary key: a plain scan would read every dead row the rounds leave.
            oldest = await session.scalar(
                select(StagedEvent.created_at).order_by(StagedEvent.id).limit(1)
            )
            EVENTS_WAITING_SECONDS.set(0 if oldest is None else (utcnow() - oldest).total_seconds())
            if oldest is None:
                return 0
            done = await sequence_batch(session)
        if done and self.on_sequenced is not None:
            self.on_sequenced()
        return done
