"""realtime: events_staged, where PostgreSQL transactions leave their events for the sequencer

docs/decisions/0031. Downgrading first moves what is still staged into the log (the older code
writes the log directly and would never read the staging table).

Revision ID: 0009_events_staged
Revises: 0008_audit_chain_seq
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0009_events_staged"
down_revision = "0008_audit_chain_seq"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events_staged",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_staged")),
    )


def downgrade() -> None:
    op.execute(
        "UPDATE event_sequence SET last = last + (SELECT COUNT(*) FROM events_staged) WHERE id = 1"
    )
    op.execute(
        "INSERT INTO events (id, kind, inbox_id, conversation_id, payload, created_at)"
        " SELECT (SELECT last FROM event_sequence WHERE id = 1)"
        " - (SELECT COUNT(*) FROM events_staged)"
        " + ROW_NUMBER() OVER (ORDER BY id), kind, inbox_id, conversation_id, payload, created_at"
        " FROM events_staged"
    )
    op.drop_table("events_staged")
