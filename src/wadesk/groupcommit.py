"""Group commit: writes that arrive while a transaction is in flight wait for the next one,
which commits them all together (docs/decisions/0002). A lone write is never delayed: the
first starts a transaction at once. Used for raw webhook deliveries (ingest/writer.py) and
for recording sends (outbox/recorder.py): on this machine a transaction's round trips cost
more CPU than its rows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.db import Database

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        db: Database,
        write: Callable[[AsyncSession, list[T]], Awaitable[None]],
        *,
        max_items: int,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._write = write
        self._max_items = max_items
        self._on_committed = on_committed
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once ``item`` is committed; raise if its transaction failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # shield: a caller that goes away must not cancel a commit others wait for.
        await asyncio.shield(future)

    async def _flush_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            try:
                async with self._db.session() as session:
                    await self._write(session, [item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if self._on_committed is not None:
                self._on_committed()
