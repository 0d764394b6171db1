"""PostgreSQL: each connection caches its short prepared statements, not the long one-off
texts of batched INSERTs (wadesk/pgcache.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from wadesk.pgcache import MAX_CACHED_SQL, ReusableStatements


def test_the_cache_declines_long_texts() -> None:
    cache = ReusableStatements(2)
    cache["SELECT 1"] = "short"
    cache["SELECT " + "1, " * MAX_CACHED_SQL + "1"] = "long"
    assert list(cache.keys()) == ["SELECT 1"]


async def test_connections_keep_short_statements_only(live):
    if live.runtime.db.is_sqlite:
        pytest.skip("SQLite: no prepared-statement cache across statements")
    long_sql = "SELECT " + " + ".join(["1"] * (MAX_CACHED_SQL // 3)) + " AS n"
    async with live.runtime.db.engine.connect() as connection:
        assert (await connection.scalar(text("SELECT 41 + 1 AS n"))) == 42
        assert (await connection.scalar(text(long_sql))) == MAX_CACHED_SQL // 3
        assert (await connection.scalar(text(long_sql))) == MAX_CACHED_SQL // 3
        raw = await connection.get_raw_connection()
        cache = raw.dbapi_connection._prepared_statement_cache
        assert isinstance(cache, ReusableStatements)
        keys = list(cache.keys())
        assert "SELECT 41 + 1 AS n" in keys
        assert not any(len(key) > MAX_CACHED_SQL for key in keys)
        assert (await connection.scalar(select(1))) == 1
