"""Group commit (wadesk.groupcommit): writes that arrive together share one transaction, a
failed transaction fails only its own writes, and a lone write is not delayed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wadesk.db import Database
from wadesk.groupcommit import GroupCommit, in_session


async def test_writes_arriving_together_share_transactions_and_failures_stay_in_theirs(settings):
    db = Database(settings)
    batches: list[list[int]] = []
    committed: list[int] = []

    async def write(session: Any, items: list[int]) -> None:
        batches.append(list(items))
        await asyncio.sleep(0.01)  # a transaction in flight: the next writes queue behind it
        if 13 in items:
            raise RuntimeError("this batch cannot be stored")

    group = GroupCommit(
        in_session(db, write), max_items=8, on_committed=lambda: committed.append(1)
    )
    try:
        results = await asyncio.gather(
            *(group.submit(i) for i in range(30)), return_exceptions=True
        )
        failed = {i for i, r in enumerate(results) if isinstance(r, RuntimeError)}
        # 30 writes at once: batches of at most 8, in arrival order.
        assert batches[0][0] == 0 and all(len(b) <= 8 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(30))
        assert len(batches) < 30 / 2
        # Only the writes that shared 13's transaction failed; the others were committed.
        (bad,) = [b for b in batches if 13 in b]
        assert failed == set(bad)
        assert len(committed) == len(batches) - 1
        # Later writes are not affected, and a lone one is written at once, alone.
        await group.submit(99)
        assert batches[-1] == [99]
    finally:
        await db.dispose()


async def test_a_caller_that_goes_away_does_not_cancel_the_commit(settings):
    db = Database(settings)
    written: list[int] = []
    release = asyncio.Event()

    async def write(session: Any, items: list[int]) -> None:
        await release.wait()
        written.extend(items)

    group = GroupCommit(in_session(db, write), max_items=10)
    try:
        caller = asyncio.create_task(group.submit(1))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        await group.submit(2)
        assert written == [1, 2]
    finally:
        await db.dispose()
