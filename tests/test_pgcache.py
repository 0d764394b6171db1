"""PostgreSQL: each connection keeps its short prepared statements in the adapter's cache and
the long texts of batched INSERTs in a small one of their own (wadesk/pgcache.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from wadesk.pgcache import MAX_SHORT_SQL, ReusableStatements


def _long(n: int) -> str:
    return f"SELECT {n} + " + " + ".join(["1"] * (MAX_SHORT_SQL // 3)) + " AS n"


def test_long_texts_have_a_small_cache_of_their_own() -> None:
    cache = ReusableStatements(4, long_capacity=2)
    cache["SELECT 1"] = "short"
    for n in range(10):
        cache[_long(n)] = n
    assert list(cache.keys()) == ["SELECT 1"]
    assert "SELECT 1" in cache and cache["SELECT 1"] == "short"
    assert _long(9) in cache and cache[_long(9)] == 9
    assert _long(0) not in cache  # pushed out by the later ones
    assert len(cache.long) <= 3  # SQLAlchemy's LRU prunes at capacity * 1.5


async def test_connections_use_the_split_cache(live):
    if live.runtime.db.is_sqlite:
        pytest.skip("SQLite: no prepared-statement cache across statements")
    expected = 1 + MAX_SHORT_SQL // 3
    async with live.runtime.db.engine.connect() as connection:
        assert (await connection.scalar(text("SELECT 41 + 1 AS n"))) == 42
        assert (await connection.scalar(text(_long(1)))) == expected
        assert (await connection.scalar(text(_long(1)))) == expected
        raw = await connection.get_raw_connection()
        cache = raw.dbapi_connection._prepared_statement_cache
        assert isinstance(cache, ReusableStatements)
        assert "SELECT 41 + 1 AS n" in cache
        assert not any(len(key) > MAX_SHORT_SQL for key in cache)
        assert _long(1) in cache.long
        assert (await connection.scalar(select(1))) == 1


async def test_a_configured_cache_size_is_kept(settings):
    """``prepared_statement_cache_size`` in the URL still sets the short texts' cache."""
    from wadesk.db import create_engine

    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    settings.database_url = settings.resolved_database_url + "?prepared_statement_cache_size=7"
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            cache = raw.dbapi_connection._prepared_statement_cache
            assert isinstance(cache, ReusableStatements) and cache.capacity == 7
    finally:
        await engine.dispose()
