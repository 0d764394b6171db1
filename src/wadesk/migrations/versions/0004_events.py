"""event log: every committed event with an id visible in commit order

Revision ID: 0004_events
Revises: 0003_merge
Create Date: 2026-11-23 18:45:00

``events`` holds the log (ids handed out by the one-row ``event_sequence`` counter right
before each commit, docs/decisions/0030); ``event_sequence`` starts at 0.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0004_events"
down_revision = "0003_merge"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    sequence = op.create_table(
        "event_sequence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_sequence")),
    )
    op.bulk_insert(sequence, [{"id": 1, "last": 0}])


def downgrade() -> None:
    op.drop_table("event_sequence")
    op.drop_table("events")
