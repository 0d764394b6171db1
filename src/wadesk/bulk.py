"""Many rows in one INSERT whose SQL text does not depend on how many there are.

On PostgreSQL an executemany runs the INSERT once per row: the executor starts and ends for
each (15-20 µs of PostgreSQL's CPU per row in ``bench/ingest.py``, where a new customer's
message inserted eight such rows: contact, identity, routing facts, queue entry, four events).
A multi-row ``VALUES`` runs once, but its text changes with the row count, so asyncpg prepares
it again and PostgreSQL parses and plans it again (7 ms for 200 messages). Here each column
travels as one array and ``INSERT ... SELECT FROM unnest(...)`` turns them back into rows: one
statement, prepared once per connection, one execution. SQLite keeps executemany (no arrays,
and it prepares nothing across statements).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, Executable, Table, Text, TextClause, bindparam, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

NO_TARGET: tuple[str, ...] = ()  # ON CONFLICT DO NOTHING for any unique key


def bulk_insert(
    dialect_name: str,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    skip_conflicts: tuple[str, ...] | None = None,
    conflict_where: ColumnElement[bool] | TextClause | None = None,
    returning: tuple[str, ...] = (),
) -> tuple[Executable, Any]:
    """The statement and parameters that insert ``rows`` (all with the same keys).

    ``skip_conflicts``: ON CONFLICT (these columns) DO NOTHING (``NO_TARGET``: any unique
    key); ``conflict_where`` qualifies a partial unique index; ``returning`` names columns.
    """
    columns = tuple(rows[0])
    if dialect_name != "postgresql":
        statement: Any = sqlite.insert(table)
        if skip_conflicts is not None:
            statement = statement.on_conflict_do_nothing(
                index_elements=list(skip_conflicts) or None, index_where=conflict_where
            )
        if returning:
            statement = statement.returning(*(table.c[name] for name in returning))
        return statement, rows
    statement = _unnest_insert(table, columns, skip_conflicts, conflict_where, returning)
    arrays: dict[str, list[Any]] = {}
    for name in columns:
        values = [row[name] for row in rows]
        # JSON travels as text: SQLAlchemy would take a list value for a nested array.
        arrays[f"bulk_{name}"] = [_json(v) for v in values] if _is_json(table, name) else values
    return statement, arrays


@lru_cache(maxsize=64)
def _unnest_insert(
    table: Table,
    columns: tuple[str, ...],
    skip_conflicts: tuple[str, ...] | None,
    conflict_where: ColumnElement[bool] | TextClause | None,
    returning: tuple[str, ...],
) -> Executable:
    """As text: SQLAlchemy would walk an ``INSERT ... FROM SELECT`` construct for its cache
    key on every execution, which cost more than the executemany it replaces."""
    defaulted = [c.name for c in table.c if c.default is not None and c.name not in columns]
    if defaulted:  # Python-side defaults are not applied to INSERT ... SELECT
        raise ValueError(f"{table.name}: rows must give {', '.join(defaulted)}")
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    names = ", ".join(columns)
    values = ", ".join(
        f"CAST(r.{name} AS {table.c[name].type.compile(dialect)})"
        if _is_json(table, name)
        else f"r.{name}"
        for name in columns
    )
    arrays = ", ".join(
        f"CAST(:bulk_{name} AS {_array_item(table, name).compile(dialect)}[])" for name in columns
    )
    # Identifiers and types from the models, never from input; the values are bound.
    sql = f"INSERT INTO {table.name} ({names}) SELECT {values} FROM unnest({arrays}) AS r({names})"  # noqa: S608
    if skip_conflicts is not None:
        target = f" ({', '.join(skip_conflicts)})" if skip_conflicts else ""
        where = (
            f" WHERE {conflict_where.compile(dialect=dialect)}"
            if conflict_where is not None
            else ""
        )
        sql += f" ON CONFLICT{target}{where} DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    statement = text(sql).bindparams(
        *(bindparam(f"bulk_{name}", type_=ARRAY(_array_item(table, name))) for name in columns)
    )
    return statement.columns(*(table.c[name] for name in returning)) if returning else statement


def _array_item(table: Table, name: str) -> Any:
    return Text() if _is_json(table, name) else table.c[name].type


def _is_json(table: Table, name: str) -> bool:
    return isinstance(table.c[name].type, JSON)


def _json(value: Any) -> str:
    """As SQLAlchemy's JSON type stores it (None is JSON ``null``), through orjson."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
