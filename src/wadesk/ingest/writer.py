"""Store raw webhook deliveries with group commit.

A webhook is answered 200 only after its body is committed. Committing each request on its
own makes the database's fsync the ceiling; instead, requests that arrive while a commit is
in flight wait for the next one, which stores them all in one transaction (see
docs/decisions/0002-group-commit-for-webhooks.md). A lone request is never delayed: the
first request starts a flush at once.

On PostgreSQL the flush is one prepared statement on a connection of the writer's own
(``wadesk.pgdirect``): through a session it cost four times the wall time, and every
webhook waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import structlog
from sqlalchemy import Table, insert

from wadesk.db import Database, utcnow
from wadesk.groupcommit import GroupCommit
from wadesk.ingest.models import WebhookDelivery
from wadesk.ingest.pressure import (
    ANNOUNCE_PILE_UP,
    PILE_UP_LOCK,
    WINDOW_SECONDS,
    WITHDRAW_PILE_UP,
    IngestPressure,
)
from wadesk.pgdirect import DirectStatement

log = structlog.get_logger(__name__)
MAX_ROWS_PER_FLUSH = 500

# One statement text whatever the batch's size: prepared once, planned once.
_INSERT_UNNEST = """
INSERT INTO webhook_deliveries
    (channel_type, inbox_id, body, signature, status, attempts, received_at)
SELECT channel_type, inbox_id, body, signature, 'pending', 0, received_at
FROM unnest($1::varchar[], $2::bigint[], $3::bytea[], $4::varchar[], $5::timestamptz[])
    AS d(channel_type, inbox_id, body, signature, received_at)
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    channel_type: str
    inbox_id: int | None
    body: bytes
    signature: str | None
    received_at: datetime


class DeliveryWriter:
    def __init__(
        self, db: Database, on_stored: Callable[[], None], pressure: IngestPressure
    ) -> None:
        self._db = db
        self._pressure = pressure
        self._direct: DirectStatement | None = None
        self._announcer: asyncio.Task[None] | None = None
        if not db.is_sqlite:
            self._direct = DirectStatement(db.settings.resolved_database_url, _INSERT_UNNEST)
        self._group = GroupCommit(
            self._commit, max_items=MAX_ROWS_PER_FLUSH, on_committed=on_stored
        )

    async def store(
        self, *, channel_type: str, inbox_id: int | None, body: bytes, signature: str | None
    ) -> None:
        """Return once the delivery is committed; raise if it could not be stored."""
        await self._group.submit(Delivery(channel_type, inbox_id, body, signature, utcnow()))

    async def close(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
        if self._direct is not None:
            await self._direct.close()

    async def _commit(self, deliveries: list[Delivery]) -> None:
        await self._insert(deliveries)
        self._pressure.flushed(len(deliveries))
        if self._direct is not None and self._announcer is None and self._pressure.piling_up():
            self._announcer = asyncio.create_task(self._announce_pile_up(self._direct))

    async def _announce_pile_up(self, direct: DirectStatement) -> None:
        """Hold the shared pile-up lock (ingest/pressure.py) on the writer's connection while
        this process's webhooks pile up; its end, or the connection's, releases it."""
        try:
            if not await direct.fetchval(ANNOUNCE_PILE_UP, PILE_UP_LOCK):
                return
            generation = direct.generation
            still = True
            while still:
                await asyncio.sleep(WINDOW_SECONDS)
                still = self._pressure.piling_up() and direct.generation == generation
            if direct.generation == generation:
                await direct.fetchval(WITHDRAW_PILE_UP, PILE_UP_LOCK)
        except Exception as exc:  # the connection is lost (and the lock with it)
            log.info("ingest.pile_up_announcement_failed", error=type(exc).__name__)
        finally:
            self._announcer = None

    async def _insert(self, deliveries: list[Delivery]) -> None:
        if self._direct is not None:
            await self._direct.execute(
                [d.channel_type for d in deliveries],
                [d.inbox_id for d in deliveries],
                [d.body for d in deliveries],
                [d.signature for d in deliveries],
                [d.received_at for d in deliveries],
            )
            return
        rows = [
            {
                "channel_type": d.channel_type,
                "inbox_id": d.inbox_id,
                "body": d.body,
                "signature": d.signature,
                "status": "pending",
                "attempts": 0,
                "received_at": d.received_at,
            }
            for d in deliveries
        ]
        async with self._db.session() as session:
            await session.execute(insert(cast(Table, WebhookDelivery.__table__)), rows)
