"""Store raw webhook deliveries with group commit.

A webhook is answered 200 only after its body is committed. Committing each request on its
own makes the database's fsync the ceiling; instead, requests that arrive while a commit is
in flight wait for the next one, which stores them all in one transaction (see
docs/decisions/0002-group-commit-for-webhooks.md). A lone request is never delayed: the
first request starts a flush at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.db import Database, utcnow
from wadesk.groupcommit import GroupCommit
from wadesk.ingest.models import WebhookDelivery

MAX_ROWS_PER_FLUSH = 500


class DeliveryWriter:
    def __init__(self, db: Database, on_stored: Callable[[], None]) -> None:
        self._group = GroupCommit(
            db, _insert_deliveries, max_items=MAX_ROWS_PER_FLUSH, on_committed=on_stored
        )

    async def store(
        self, *, channel_type: str, inbox_id: int | None, body: bytes, signature: str | None
    ) -> None:
        """Return once the delivery is committed; raise if it could not be stored."""
        await self._group.submit(
            {
                "channel_type": channel_type,
                "inbox_id": inbox_id,
                "body": body,
                "signature": signature,
                "status": "pending",
                "attempts": 0,
                "received_at": utcnow(),
            }
        )


async def _insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(insert(cast(Table, WebhookDelivery.__table__)), rows)
