"""Store raw webhook deliveries with group commit.

A webhook is answered 200 only after its body is committed. Committing each request on its
own makes the database's fsync the ceiling; instead, requests that arrive while a commit is
in flight wait for the next one, which stores them all in one transaction (see
docs/decisions/0002-group-commit-for-webhooks.md). A lone request is never delayed: the
first request starts a flush at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, insert

from wadesk.db import Database, utcnow
from wadesk.ingest.models import WebhookDelivery

MAX_ROWS_PER_FLUSH = 500


class DeliveryWriter:
    def __init__(self, db: Database, on_stored: Callable[[], None]) -> None:
        self._db = db
        self._on_stored = on_stored
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(
        self, *, channel_type: str, inbox_id: int | None, body: bytes, signature: str | None
    ) -> None:
        """Return once the delivery is committed; raise if it could not be stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        row = {
            "channel_type": channel_type,
            "inbox_id": inbox_id,
            "body": body,
            "signature": signature,
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        }
        self._pending.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # shield: a client that hangs up must not cancel a commit other requests wait for.
        await asyncio.shield(future)

    async def _flush_all(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_ROWS_PER_FLUSH]
            del self._pending[:MAX_ROWS_PER_FLUSH]
            try:
                async with self._db.session() as session:
                    await session.execute(
                        insert(cast(Table, WebhookDelivery.__table__)), [row for row, _ in batch]
                    )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self._on_stored()
