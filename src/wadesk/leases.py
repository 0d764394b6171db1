"""Periodic jobs that must run once per deployment, not once per process.

Every `wadesk serve` and `wadesk worker` process runs the same background loops. Work that
claims rows (the outbox, the ingest processor) is safe to run everywhere; a periodic sweep
(event retention, presence, parked statuses, snooze wake-up) is not worth doing N times, and
some must not be. Wrap its round in :func:`singleton`::

    async with singleton(db, "event-retention") as leader:
        if leader:
            await delete_old_events(...)

or ``await run_if_leader(db, "event-retention", work)``. Whoever takes the lock first runs the
round; the others skip it and try again at their next round, so if the leader dies another
process takes over at once. No table and no expiry to tune:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection held for
  the block; PostgreSQL releases it when that connection ends, so a process killed with -9 does
  not keep it.
- SQLite (one machine): an exclusive ``flock`` on ``<var_dir>/locks/<name>.lock``; the kernel
  releases it when the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy import text

from wadesk.db import Database

log = structlog.get_logger(__name__)
T = TypeVar("T")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def lock_key(name: str) -> int:
    """The advisory lock key of a name: 64 signed bits, stable across processes."""
    digest = hashlib.blake2b(f"wadesk.lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.asynccontextmanager
async def singleton(db: Database, name: str) -> AsyncIterator[bool]:
    """Hold the lease ``name`` for the block if no other process (or task) holds it: yields
    True then, else False at once (it never waits)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"lease name {name!r}: lower-case letters, digits, '.', '_', '-'")
    if db.is_sqlite:
        async with _file_lock(db, name) as held:
            yield held
        return
    key = lock_key(name)
    async with db.engine.connect() as connection:
        held = bool(
            await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        )
        await connection.commit()
        try:
            yield held
        finally:
            if held:
                try:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await connection.commit()
                except Exception:
                    # The connection is unusable: drop it, and the lock goes with it.
                    log.warning("lease.unlock_failed", lease=name)
                    await connection.invalidate()


@contextlib.asynccontextmanager
async def _file_lock(db: Database, name: str) -> AsyncIterator[bool]:
    folder = Path(db.settings.var_dir) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def run_if_leader(db: Database, name: str, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``work`` under the lease ``name``; None (and nothing run) if another holds it."""
    async with singleton(db, name) as leader:
        if not leader:
            return None
        return await work()
