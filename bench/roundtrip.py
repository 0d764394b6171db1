"""What one database round trip costs this machine's CPU, layer by layer.

Why wadesk counts its statements and transactions per message: on the 2-core test machine a
statement in a session of its own costs several times the bare round trip, and the reply path
is made of dozens. Each row below runs ``--ops`` times against PostgreSQL (``--database-url``,
default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``; nothing is written) and
prints the client's CPU time (user + system, ``time.process_time``) and wall time per
operation. The first row is the baseline of the same run: asyncpg's ``SELECT 1``.

Run `.venv/bin/python bench/roundtrip.py [--ops 2000] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def measure(ops: int, step: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of ``step``, after a warm-up."""
    for _ in range(min(ops // 10, 100)):
        await step()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(ops):
        await step()
    return (
        (time.process_time() - cpu) / ops * 1e6,
        (time.perf_counter() - wall) / ops * 1e6,
    )


async def run(url: str, ops: int) -> list[dict[str, Any]]:
    import asyncpg
    from sqlalchemy import bindparam, select, text
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    rows: list[dict[str, Any]] = []

    def add(name: str, figures: tuple[float, float]) -> None:
        rows.append({"layer": name, "cpu_us": round(figures[0]), "wall_us": round(figures[1])})

    raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        add("asyncpg: SELECT 1 (baseline)", await measure(ops, lambda: raw.fetchval("SELECT 1")))
        prepared = await raw.prepare("SELECT 1")
        add("asyncpg: prepared SELECT 1", await measure(ops, prepared.fetchval))

        async def raw_transaction() -> None:
            async with raw.transaction():
                await prepared.fetchval()

        add("asyncpg: BEGIN, SELECT 1, COMMIT", await measure(ops, raw_transaction))
    finally:
        await raw.close()
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    try:
        select_one = text("SELECT 1")
        async with engine.connect() as connection:
            add(
                "SQLAlchemy connection: SELECT 1",
                await measure(ops, lambda: connection.execute(select_one)),
            )

        async def in_own_session() -> None:
            async with AsyncSession(engine) as session, session.begin():
                await session.execute(select_one)

        add("SQLAlchemy session of its own: SELECT 1", await measure(ops, in_own_session))
        # A statement of the shape wadesk's claims run (a WHERE, an IN list, ORDER BY,
        # LIMIT), built for every call as most code does, or built once with bind parameters.
        catalog = _pg_class()

        def built_per_call() -> Any:
            return (
                select(catalog.c.oid, catalog.c.relname)
                .where(catalog.c.relpages >= 0, catalog.c.relname.in_(["pg_class", "pg_type"]))
                .order_by(catalog.c.oid)
                .limit(5)
            )

        once = (
            select(catalog.c.oid, catalog.c.relname)
            .where(
                catalog.c.relpages >= bindparam("pages"),
                catalog.c.relname.in_(bindparam("names", expanding=True)),
            )
            .order_by(catalog.c.oid)
            .limit(bindparam("limit"))
        )
        async with engine.connect() as connection:

            async def run_built() -> None:
                (await connection.execute(built_per_call())).all()

            async def run_once_built() -> None:
                values = {"pages": 0, "names": ["pg_class", "pg_type"], "limit": 5}
                (await connection.execute(once, values)).all()

            add(
                "SQLAlchemy Core: a claim-like SELECT built per call", await measure(ops, run_built)
            )
            add("SQLAlchemy Core: the same built once", await measure(ops, run_once_built))
            driver = (await connection.get_raw_connection()).driver_connection
            sql = (
                "SELECT oid, relname FROM pg_catalog.pg_class"
                " WHERE relpages >= $1 AND relname::text = ANY($2::text[]) ORDER BY oid LIMIT $3"
            )
            add(
                "asyncpg: the same statement",
                await measure(ops, lambda: driver.fetch(sql, 0, ["pg_class", "pg_type"], 5)),
            )
    finally:
        await engine.dispose()
    return rows


def _pg_class() -> Any:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    return Table(
        "pg_class",
        MetaData(),
        Column("oid", Integer),
        Column("relname", String),
        Column("relpages", Integer),
        schema="pg_catalog",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--ops", type=int, default=2000, help="operations per row")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rows = asyncio.run(run(args.database_url, args.ops))
    baseline = rows[0]["cpu_us"] or 1
    for row in rows:
        row["cpu_vs_baseline"] = round(row["cpu_us"] / baseline, 1)
    if args.json:
        print(json.dumps({"ops": args.ops, "rows": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"One round trip, layer by layer ({args.ops} operations each)")
    for column in ("layer", "CPU µs/op", "wall µs/op", "CPU vs baseline"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for row in rows:
        table.add_row(
            row["layer"], str(row["cpu_us"]), str(row["wall_us"]), f"{row['cpu_vs_baseline']}x"
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
