"""Linking committed audit rows into the hash chain (PostgreSQL; docs/decisions/0014).

``record()`` writes a row unchained and takes no lock, so audited transactions never wait for
one another. This loop, run by every process a few times a second, reads the unchained rows
every other transaction has committed, in id order, and gives each its ``chain_seq``,
``prev_hash`` and ``hash``. A row whose transaction committed after a higher id was linked
simply gets a later place: the chain's order is the order rows became visible. The
transaction-scoped advisory lock keeps two linkers (two processes' loops, or a loop and
``wadesk audit verify``) from forking the tail: the second waits, then finds only what
committed after the first's round.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.chain import link
from wadesk.audit.models import AuditEvent
from wadesk.audit.queries import chain_tail
from wadesk.background import BackgroundLoop
from wadesk.db import Database, utcnow
from wadesk.leases import lock_key
from wadesk.metrics import AUDIT_UNCHAINED_SECONDS

# Held while linking (one linker at a time in the deployment).
LINK_LOCK = lock_key("audit-chain.link")
BATCH = 2000


async def chain_batch(session: AsyncSession, secret_key: str, *, batch: int = BATCH) -> int:
    """Link up to ``batch`` committed rows; the number linked (0: nothing was waiting)."""
    if session.bind.dialect.name != "postgresql":
        return 0  # SQLite links rows as they are written
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINK_LOCK})
    pending = list(
        (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.hash.is_(None), AuditEvent.chain_seq.is_(None))
                .order_by(AuditEvent.id)
                .limit(batch)
            )
        ).all()
    )
    if not pending:
        return 0
    seq, previous = await chain_tail(session)
    # Linked detached: written by the one UPDATE below, the only kind the trigger allows.
    session.expunge_all()
    link(secret_key, pending, seq, previous)
    values = [
        {"row_id": row.id, "seq": row.chain_seq, "prev": row.prev_hash, "hash": row.hash}
        for row in pending
    ]
    await session.execute(
        update(AuditEvent.__table__)  # type: ignore[arg-type]
        .where(
            AuditEvent.__table__.c.id == bindparam("row_id"),
            AuditEvent.__table__.c.hash.is_(None),
            AuditEvent.__table__.c.chain_seq.is_(None),
        )
        .values(chain_seq=bindparam("seq"), prev_hash=bindparam("prev"), hash=bindparam("hash")),
        values,
    )
    return len(values)


async def chain_pending(db: Database, secret_key: str) -> int:
    """Link everything committed so far (each batch its own transaction); the rows linked."""
    total = 0
    while True:
        async with db.session() as session:
            done = await chain_batch(session, secret_key)
        total += done
        if done < BATCH:
            return total


class AuditChainer(BackgroundLoop):
    """Links new rows within ``idle_seconds`` of their commit; a cheap indexed look for
    unchained rows first, so idle processes do not contend for the lease."""

    name = "audit.chainer"

    def __init__(self, db: Database, secret_key: str, *, idle_seconds: float = 0.2) -> None:
        super().__init__()
        self.db = db
        self.secret_key = secret_key
        self.idle_seconds = idle_seconds

    async def run_once(self) -> int:
        """One transaction: the look, then (if anything waits) the linking. A round that
        linked less than a full batch returns 0, so the loop rests ``idle_seconds`` and the
        next round links together everything committed meanwhile: a few rounds a second
        under any load, not one per audited transaction."""
        async with self.db.session() as session:
            oldest = await session.scalar(
                select(AuditEvent.created_at)
                .where(AuditEvent.hash.is_(None))
                .order_by(AuditEvent.id)
                .limit(1)
            )
            AUDIT_UNCHAINED_SECONDS.set(
                0 if oldest is None else (utcnow() - oldest).total_seconds()
            )
            if oldest is None:
                return 0
            done = await chain_batch(session, self.secret_key)
        return done if done >= BATCH else 0
