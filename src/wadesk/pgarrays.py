"""PostgreSQL: ``column IN (:values)`` sent as ``column = ANY(:array)``.

SQLAlchemy renders an IN list with one parameter per value, so a query's SQL text changes
with the number of values, and asyncpg prepares each new text before running it (an extra
round trip, and a plan for PostgreSQL to make). wadesk's loops read and write in batches of
varying size: in ``bench/automation.py`` a quarter of all statements were first prepared
(~2.4 prepares per message). With one array parameter the text is the same for any number
of values, so each connection prepares it once. Only simple IN lists (a bound list of
integers or strings) are rewritten; ``NOT IN``, tuples, subqueries and literal rendering keep
SQLAlchemy's own form. SQLite keeps IN lists (it has no arrays, and prepares nothing across
statements anyway).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import OPERATORS
from sqlalchemy.sql.elements import BinaryExpression, BindParameter


class ArrayInCompiler(PGCompiler_asyncpg):
    def visit_in_op_binary(
        self, binary: BinaryExpression[Any], operator: operators.OperatorType, **kw: Any
    ) -> str:
        values = binary.right
        if (
            isinstance(values, BindParameter)
            and values.expanding
            and not values.literal_execute
            and not kw.get("literal_binds")
            and not kw.get("literal_execute")
            and values.type._type_affinity in (Integer, String)
        ):
            # A clone keeps the key and links to the original (its _cloned_set): a cached
            # compiled statement takes the next statement's values for it, as for any bind.
            array = values._clone(maintain_key=True)
            array.expanding = False
            array.type = ARRAY(values.type)
            left = binary.left._compiler_dispatch(self, **kw)
            return f"{left} = ANY ({array._compiler_dispatch(self, **kw)})"
        return self._generate_generic_binary(binary, OPERATORS[operator], **kw)


def among(column: Any, name: str = "ids") -> Any:
    """``column IN :name`` for a statement built once and run with a list as ``name``
    (rewritten as above on PostgreSQL)."""
    return column.in_(bindparam(name, expanding=True, type_=column.type))


def use_array_in(engine: AsyncEngine) -> None:
    """Compile this engine's statements with ``ArrayInCompiler`` (PostgreSQL/asyncpg)."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg":
        engine.dialect.statement_compiler = ArrayInCompiler
