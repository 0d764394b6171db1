"""PostgreSQL: keep only reusable statements in each connection's prepared-statement cache.

SQLAlchemy's asyncpg adapter keeps the last 100 prepared statements of each connection, keyed
by their SQL text. A batched INSERT (insertmanyvalues: ``VALUES (...), (...), ...``) has a
different text for every row count, often tens of kilobytes, and is seldom run again with the
same count: under ``bench/faults/festival.py`` each server process held ~11 MB of such
statements (their texts and asyncpg's state), filled during the first minute of load, which
was most of the RSS growth the soak measured. Statements longer than ``MAX_CACHED_SQL`` are
prepared and used once, as a cache miss would have anyway; the short, constant-shape
statements that make up nearly all executions stay cached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import LRUCache

MAX_CACHED_SQL = 4096  # characters
CACHE_SIZE = 100  # SQLAlchemy's default for asyncpg


class ReusableStatements(LRUCache[str, Any]):
    """An LRU cache that declines long statement texts."""

    def __setitem__(self, key: str, value: Any) -> None:
        if len(key) <= MAX_CACHED_SQL:
            super().__setitem__(key, value)


def cache_only_reusable_statements(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if getattr(dbapi_connection, "_prepared_statement_cache", None) is not None:
            dbapi_connection._prepared_statement_cache = ReusableStatements(CACHE_SIZE)
