"""PostgreSQL: long one-off statements get a small cache of their own on each connection.

SQLAlchemy's asyncpg adapter keeps the last 100 prepared statements of each connection, keyed
by their SQL text. A batched INSERT (insertmanyvalues: ``VALUES (...), (...), ...``) has a
different text for every row count, often tens of kilobytes: under
``bench/faults/festival.py`` each server process held ~11 MB of such statements (their texts
and asyncpg's state), filled during the first minute of load, most of the RSS growth the soak
measured. Not caching them at all cost the ingest path a prepare per batch (its sustained
1,000/s backlog grew). So statements longer than ``MAX_SHORT_SQL`` share a cache of
``LONG_CACHE_SIZE``: the row counts of a steady load repeat and stay prepared, and memory stays
bounded; short statements keep the adapter's 100.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import LRUCache

MAX_SHORT_SQL = 4096  # characters
CACHE_SIZE = 100  # SQLAlchemy's default for asyncpg (a configured size is kept)
LONG_CACHE_SIZE = 16


class ReusableStatements(LRUCache[str, Any]):
    """The adapter's LRU cache for short texts, and a small one for long texts."""

    def __init__(self, capacity: int = CACHE_SIZE, long_capacity: int = LONG_CACHE_SIZE) -> None:
        super().__init__(capacity)
        self.long: LRUCache[str, Any] = LRUCache(long_capacity)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and len(key) > MAX_SHORT_SQL:
            return key in self.long
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        if len(key) > MAX_SHORT_SQL:
            return self.long[key]
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if len(key) > MAX_SHORT_SQL:
            self.long[key] = value
        else:
            super().__setitem__(key, value)


def bound_long_statement_cache(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cache = getattr(dbapi_connection, "_prepared_statement_cache", None)
        if cache is not None:  # None: prepared_statement_cache_size=0, caching is off
            dbapi_connection._prepared_statement_cache = ReusableStatements(cache.capacity)
