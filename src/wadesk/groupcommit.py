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
    """``commit`` writes and commits one batch (at most ``max_items``), or raises."""

    def __init__(
        self,
        commit: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._commit = commit
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
        # A caller that goes away cancels only its own future: the flush goes on for the
        # others (and may still commit this item). No shield: it would cost a loop pass.
        await future

    async def _flush_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            try:
                await self._commit([item for item, _ in batch])
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


def in_session(
    db: Database, write: Callable[[AsyncSession, list[T]], Awaitable[None]]
) -> Callable[[list[T]], Awaitable[None]]:
    """A group commit's ``commit`` that runs ``write`` in a session of its own."""

    async def commit(items: list[T]) -> None:
        async with db.session() as session:
            await write(session, items)

    return commit
