"""audit: rows are linked after commit (chain_seq; nullable hashes; the one allowed UPDATE)

docs/decisions/0014. Existing rows keep their hashes: they were linked in id order, so their
``chain_seq`` is their rank by id. On PostgreSQL the append-only trigger now lets exactly one
UPDATE through: an unchained row getting its place, link and hash, nothing else changed.
Downgrading re-links every row in id order with WADESK_SECRET_KEY (the old order).

Revision ID: 0008_audit_chain_seq
Revises: 0007_flows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0008_audit_chain_seq"
down_revision = "0007_flows"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

LINK_ONCE_FUNCTION = """
CREATE OR REPLACE FUNCTION wadesk_audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND NEW.id = OLD.id
       AND NEW.created_at = OLD.created_at
       AND NEW.actor_type = OLD.actor_type
       AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
       AND NEW.action = OLD.action
       AND NEW.target_type IS NOT DISTINCT FROM OLD.target_type
       AND NEW.target_id IS NOT DISTINCT FROM OLD.target_id
       AND NEW.ip IS NOT DISTINCT FROM OLD.ip
       AND NEW.user_agent IS NOT DISTINCT FROM OLD.user_agent
       AND NEW.details::text IS NOT DISTINCT FROM OLD.details::text
    THEN
        RETURN NEW;  -- the chainer linking a committed row (wadesk.audit.chainer)
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION wadesk_audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def _trigger(enabled: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        verb = "ENABLE" if enabled else "DISABLE"
        op.execute(f"ALTER TABLE audit_events {verb} TRIGGER audit_events_append_only")


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    _trigger(False)
    op.execute(
        "UPDATE audit_events SET chain_seq = ranked.seq FROM"
        " (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_events) AS ranked"
        " WHERE audit_events.id = ranked.id"
    )
    _trigger(True)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_chain_seq", ["chain_seq"], unique=True)
        batch_op.create_index(
            "ix_audit_events_unchained",
            ["id"],
            unique=False,
            postgresql_where=sa.text("hash IS NULL"),
            sqlite_where=sa.text("hash IS NULL"),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LINK_ONCE_FUNCTION)


def _relink_in_id_order() -> None:
    from wadesk.audit.chain import GENESIS, row_hash
    from wadesk.config import get_settings

    audit = sa.table(
        "audit_events",
        sa.column("id", BigId),
        sa.column("created_at", wadesk.db.UTCDateTime(timezone=True)),
        sa.column("actor_type", sa.String()),
        sa.column("actor_id", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("ip", sa.String()),
        sa.column("user_agent", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    connection = op.get_bind()
    key = get_settings().resolved_secret_key()
    previous = GENESIS
    for row in connection.execute(sa.select(audit).order_by(audit.c.id)).mappings().all():
        digest = row_hash(
            key,
            prev_hash=previous,
            created_at=row["created_at"],
            actor_type=row["actor_type"],
            actor_id=row["actor_id"],
            action=row["action"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            ip=row["ip"],
            user_agent=row["user_agent"],
            details=row["details"] or {},
        )
        if (row["prev_hash"], row["hash"]) != (previous, digest):
            connection.execute(
                audit.update()
                .where(audit.c.id == row["id"])
                .values(prev_hash=previous, hash=digest)
            )
        previous = digest


def downgrade() -> None:
    _trigger(False)
    _relink_in_id_order()
    _trigger(True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_unchained")
        batch_op.drop_index("ix_audit_events_chain_seq")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("chain_seq")
