"""PostgreSQL: one asyncpg connection of its own, for a statement so hot that SQLAlchemy's
session is most of its cost.

The webhook writer's group commit stores every delivery before it is answered. Through a
session, a flush of 16-32 rows took 1.9-3.1 ms of wall time (BEGIN, the INSERT, COMMIT, the
ORM's and the adapter's work around each); one prepared ``INSERT ... SELECT FROM unnest(...)``
in autocommit takes 0.4-0.6 ms, fsync included (docs/benchmarks.md). The connection opens on
first use and again after it was lost; a failure is raised to the caller, whose retry (Meta's,
for a webhook answered 503) finds a new connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://...`` as asyncpg spells it."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class DirectStatement:
    """One statement, prepared once per connection, run in autocommit (its own transaction)."""

    def __init__(self, sqlalchemy_url: str, sql: str, *, connect_timeout: float = 10.0) -> None:
        self._dsn = asyncpg_dsn(sqlalchemy_url)
        self._sql = sql
        self._connect_timeout = connect_timeout
        self._connection: Any = None
        self._prepared: Any = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        # Counts the connections opened: what a caller set up on one (a session-level
        # advisory lock) is gone when the number changes.
        self.generation = 0

    async def execute(self, *args: Any) -> None:
        async with self._lock:
            prepared = await self._ready()
            try:
                await prepared.fetch(*args)
            except Exception as exc:
                if self._connection is not None and not self._connection.is_closed():
                    raise  # the statement failed; the connection (autocommit) is fine
                self._drop()
                raise ConnectionError("the database connection was lost") from exc
            except BaseException:  # cancelled: the server may still be running it
                self._drop()
                raise

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Another (rare) statement on the same connection."""
        async with self._lock:
            await self._ready()
            try:
                return await self._connection.fetchval(sql, *args)
            except BaseException:
                if self._connection is not None and self._connection.is_closed():
                    self._drop()
                raise

    async def _ready(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._drop()
            connection = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
            try:
                self._prepared = await connection.prepare(self._sql)
            except BaseException:
                connection.terminate()
                raise
            self._connection = connection
            self.generation += 1
        return self._prepared

    def _drop(self) -> None:
        connection, self._connection, self._prepared = self._connection, None, None
        if connection is not None:
            connection.terminate()

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                await self._connection.close()
            self._connection = self._prepared = None
