"""Acceptance first under overload: while webhooks pile up faster than this process answers
them and processing is behind, processing steps aside
(docs/decisions/0006-acceptance-first-under-overload.md).

A delivery is safe once it is committed, and Meta waits for the 200 (and sends again, adding
load, when it does not come quickly). Processing costs an order of magnitude more than
acceptance (~1.5 ms of CPU per message against ~0.1 ms) and shares the process's event loop
and the database with it. Past processing's capacity the backlog grows whatever processing
does, and every round it runs meanwhile takes time from the webhooks.

The signal is the group commit's flush size: the deliveries that arrived while the previous
flush was in flight. At an ordinary rate it is 1-3; when webhooks pile up (the event loop
busy, the database slow) it grows, whatever rate is actually achieved. A rate measure would
not do: a process whose loop is busy processing accepts little, and so would look quiet.
When the flushes are large and a loop is behind (its last batch was full), the ingest
processor and the event sequencer run one batch (round) per ``MAX_DEFER_SECONDS`` (the inbox
keeps moving) until the pile-up ends; a moderate overload then settles into a share of time
for each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import text

from wadesk.db import Database
from wadesk.leases import lock_key
from wadesk.metrics import STEPPED_ASIDE_SECONDS

# Mean deliveries per flush, over the last window, that count as a pile-up.
PILE_UP_ROWS = 4.0
MIN_FLUSHES = 10  # fewer flushes than this in a window: too quiet to be a pile-up
WINDOW_SECONDS = 0.25
MAX_DEFER_SECONDS = 1.0
DEFER_STEP_SECONDS = 0.05  # how often a loop that stepped aside looks again
# PostgreSQL: a process whose webhooks pile up holds this advisory lock in shared mode on its
# writer's connection, so that the processors of every process step aside, not only its own
# (they share the database, and on one machine the cores). Positive: pg_locks shows it as
# two unsigned halves.
PILE_UP_LOCK = lock_key("ingest.pile-up") & 0x7FFF_FFFF_FFFF_FFFF
ANNOUNCE_PILE_UP = "SELECT pg_try_advisory_lock_shared($1)"
WITHDRAW_PILE_UP = "SELECT pg_advisory_unlock_shared($1)"
_ANY_PILE_UP = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND objsubid = 1 AND granted
          AND (classid::bigint << 32) | objid::bigint = :key
    )
    """
)


class IngestPressure:
    """The group commit's recent flush sizes in one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._now = clock
        self._window_start = clock()
        self._flushes = self._rows = 0  # in the current window
        self._last = (0, 0)  # flushes, rows of the window before

    def flushed(self, rows: int) -> None:
        self._roll()
        self._flushes += 1
        self._rows += rows

    def piling_up(self) -> bool:
        self._roll()
        flushes = self._last[0] + self._flushes
        rows = self._last[1] + self._rows
        return flushes >= MIN_FLUSHES and rows >= PILE_UP_ROWS * flushes

    def _roll(self) -> None:
        now = self._now()
        elapsed = now - self._window_start
        if elapsed < WINDOW_SECONDS:
            return
        # One window later the current counts become the last; longer, both are stale.
        fresh = elapsed < 2 * WINDOW_SECONDS
        self._last = (self._flushes, self._rows) if fresh else (0, 0)
        self._flushes = self._rows = 0
        self._window_start = now


class PileUpWatch:
    """Whether webhooks pile up in this process or (PostgreSQL) in any process that announces
    it, for the loops that step aside meanwhile: the ingest processor, the event sequencer."""

    def __init__(self, db: Database, pressure: IngestPressure) -> None:
        self._db = db
        self.pressure = pressure
        self._asked_at = -WINDOW_SECONDS
        self._elsewhere = False

    async def piling_up(self) -> bool:
        """Here, or elsewhere (asked at most once per window)."""
        if self.pressure.piling_up():
            return True
        if self._db.is_sqlite:
            return False
        now = time.monotonic()
        if now - self._asked_at >= WINDOW_SECONDS:
            self._asked_at = now
            async with self._db.reader() as session:
                found = await session.scalar(_ANY_PILE_UP, {"key": PILE_UP_LOCK})
            self._elsewhere = bool(found)
        return self._elsewhere

    async def step_aside(
        self, loop: str, last_round_at: float, stopping: Callable[[], bool]
    ) -> None:
        """For a loop that is behind: return once the pile-up is over, or MAX_DEFER_SECONDS
        after its last round began (one round per deferral keeps its work moving)."""
        deadline = last_round_at + MAX_DEFER_SECONDS
        started = time.monotonic()
        try:
            while not stopping() and await self.piling_up():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                await asyncio.sleep(min(DEFER_STEP_SECONDS, remaining))
        finally:
            STEPPED_ASIDE_SECONDS.labels(loop).inc(time.monotonic() - started)
