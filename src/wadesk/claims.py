"""The lease a worker puts on the rows it claimed (outbox sends, automation jobs).

Both loops claim due rows ``FOR UPDATE SKIP LOCKED`` and then lease them in one statement,
built once: ``next_attempt_at`` moves to the lease's end (a crashed worker's rows are due
again then), ``lease_owner`` names the worker, ``attempts`` counts the try. Run it with
``ids``, ``lease`` and ``owner``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, bindparam, update

from wadesk.pgarrays import among


def lease_update(model: Any) -> Update:
    """``UPDATE <model> SET next_attempt_at = :lease, lease_owner = :owner,
    attempts = attempts + 1 WHERE id IN :ids``; add values or ``RETURNING`` to it."""
    return (
        update(model)
        .where(among(model.id))
        .values(
            next_attempt_at=bindparam("lease"),
            lease_owner=bindparam("owner"),
            attempts=model.attempts + 1,
        )
    )
