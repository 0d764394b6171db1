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

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.background import BackgroundLoop
from wadesk.db import CREATE_EVENT_COUNTER, Database, UTCDateTime, utcnow
from wadesk.ingest.pressure import PileUpWatch
from wadesk.metrics import EVENTS_WAITING_SECONDS

BATCH = 5_000

_LOCK_COUNTER = text("SELECT last FROM event_sequence WHERE id = 1 FOR UPDATE")
# One statement moves the oldest staged events into the log, numbered after ``last`` in
# staging order, and moves the counter on (only if something moved: an idle round writes
# nothing). It runs after the counter's lock is held, so its snapshot holds every round
# committed before this one.
_MOVE = (
    text(
        """
        WITH moved AS (
            DELETE FROM events_staged
            WHERE id <= (
                SELECT max(id) FROM (SELECT id FROM events_staged ORDER BY id LIMIT :batch) AS b
            )
            RETURNING id, kind, inbox_id, conversation_id, payload, created_at
        ), logged AS (
            INSERT INTO events (id, kind, inbox_id, conversation_id, payload, created_at)
            SELECT :last + row_number() OVER (ORDER BY id),
                   kind, inbox_id, conversation_id, payload, created_at
            FROM moved
            RETURNING created_at
        ), counted AS (
            SELECT count(*) AS n, min(created_at) AS oldest FROM logged
        ), bumped AS (
            UPDATE event_sequence SET last = :last + (SELECT n FROM counted)
            WHERE id = 1 AND (SELECT n FROM counted) > 0
        )
        SELECT n, oldest FROM counted
        """
    )
    .bindparams(bindparam("batch", type_=Integer), bindparam("last", type_=BigInteger))
    .columns(n=Integer, oldest=UTCDateTime)
)


async def sequence_batch(session: AsyncSession, *, batch: int = BATCH) -> int:
    """Give ids to up to ``batch`` staged events of committed transactions; how many.

    The counter row is locked first, so that a second sequencer (``sequence_pending`` beside
    the loop, or another process's loop) reads the staging table only after the first one's
    round is committed. Two statements a round: the lock, then the move."""
    last = await session.scalar(_LOCK_COUNTER)
    if last is None:  # the counter row is missing (tables emptied, a partial restore)
        await session.execute(CREATE_EVENT_COUNTER)
        last = await session.scalar(_LOCK_COUNTER)
    moved, oldest = (await session.execute(_MOVE, {"batch": batch, "last": int(last)})).one()
    EVENTS_WAITING_SECONDS.set(0 if oldest is None else (utcnow() - oldest).total_seconds())
    return int(moved)


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
        watch: PileUpWatch | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.watch = watch
        self._behind = False  # the last round was full
        self._last_round_at = 0.0
        self.on_sequenced = on_sequenced
        self.idle_seconds = idle_seconds

    async def run_once(self) -> int:
        """One round in one transaction. Every process runs it when woken: the counter row's
        lock makes a second one wait for the first's round and then take what committed
        meanwhile, which is also what keeps the other processes' events from waiting for
        the next poll. While webhooks pile up and it is behind, one round per deferral: its
        rounds are the heaviest statements after a burst (ADR 0006)."""
        if self._behind and self.watch is not None:
            await self.watch.step_aside(
                "event-sequencer", self._last_round_at, lambda: self._stopping
            )
        self._last_round_at = time.monotonic()
        async with self.db.session() as session:
            done = await sequence_batch(session)
        self._behind = done >= BATCH
        if done and self.on_sequenced is not None:
            self.on_sequenced()
        return done
