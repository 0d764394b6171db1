"""wadesk.leases: a periodic job runs in one process at a time, and a dead leader lets go."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from wadesk.config import get_settings
from wadesk.db import Database
from wadesk.leases import lock_key, run_if_leader, singleton

HOLDER = """
import asyncio, sys
from wadesk.config import get_settings
from wadesk.db import Database
from wadesk.leases import singleton

async def main():
    db = Database(get_settings())
    async with singleton(db, sys.argv[1]) as held:
        print("held" if held else "not-held", flush=True)
        await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    database = Database(get_settings())
    yield database
    await database.dispose()


async def test_only_one_holder_at_a_time(db: Database) -> None:
    async with singleton(db, "sweep") as first:
        assert first is True
        async with singleton(db, "sweep") as second:
            assert second is False
        async with singleton(db, "another-job") as other:
            assert other is True  # names are independent
    async with singleton(db, "sweep") as again:
        assert again is True  # released at the end of the block


async def test_released_when_the_block_raises(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with singleton(db, "raises") as held:
            assert held
            raise RuntimeError("boom")
    async with singleton(db, "raises") as held:
        assert held


async def test_run_if_leader_runs_the_work_once(db: Database) -> None:
    runs: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def work() -> str:
        runs.append("ran")
        started.set()
        await release.wait()
        return "done"

    leader = asyncio.create_task(run_if_leader(db, "once", work))
    await started.wait()
    assert await run_if_leader(db, "once", work) is None  # the other "process" skips
    release.set()
    assert await leader == "done"
    assert runs == ["ran"]


async def test_a_killed_leader_lets_go(db: Database) -> None:
    """The lock belongs to the process: kill -9 it and another takes over at once."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "cross-process"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 60)
        assert line.strip() == "held"
        async with singleton(db, "cross-process") as held:
            assert held is False
    finally:
        holder.kill()
        holder.wait()
    for _ in range(50):  # PostgreSQL notices the closed connection within moments
        async with singleton(db, "cross-process") as held:
            if held:
                break
        await asyncio.sleep(0.1)
    assert held is True


def test_names_are_checked_and_keys_stable() -> None:
    assert lock_key("event-retention") == lock_key("event-retention")
    assert lock_key("event-retention") != lock_key("presence-sweep")
    assert -(2**63) <= lock_key("x") < 2**63

    async def bad() -> None:
        async with singleton(Database(get_settings()), "../etc/passwd"):
            pass

    with pytest.raises(ValueError):
        asyncio.run(bad())
