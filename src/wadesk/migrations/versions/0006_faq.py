"""automation: the FAQ bot (entries, daily counters, per-inbox enable + threshold)

Revision ID: 0006_faq
Revises: 0005_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0006_faq"
down_revision = "0005_merge"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "automation_faq_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("inbox_id", BigId, nullable=True),
        sa.Column("question", sa.String(length=500), nullable=False),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Integer(), nullable=False),
        sa.Column("last_matched_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_reviewed_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_automation_faq_entries_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_faq_entries")),
    )
    op.create_index(
        "ix_automation_faq_entries_inbox",
        "automation_faq_entries",
        ["inbox_id", "id"],
        unique=False,
    )
    op.create_table(
        "automation_faq_days",
        sa.Column("faq_id", BigId, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["faq_id"],
            ["automation_faq_entries.id"],
            name=op.f("fk_automation_faq_days_faq_id_automation_faq_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("faq_id", "day", name=op.f("pk_automation_faq_days")),
    )
    # Existing inboxes get the FAQ bot off, with the default threshold.
    with op.batch_alter_table("automation_inbox_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("faq_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("faq_threshold", sa.Integer(), nullable=False, server_default="80")
        )


def downgrade() -> None:
    with op.batch_alter_table("automation_inbox_settings", schema=None) as batch_op:
        batch_op.drop_column("faq_threshold")
        batch_op.drop_column("faq_enabled")
    op.drop_table("automation_faq_days")
    op.drop_index("ix_automation_faq_entries_inbox", table_name="automation_faq_entries")
    op.drop_table("automation_faq_entries")
