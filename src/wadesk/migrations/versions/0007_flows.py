"""automation: guided flows (definitions, their versions, each conversation's place in one)

Revision ID: 0007_flows
Revises: 0006_faq
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0007_flows"
down_revision = "0006_faq"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "automation_flows",
        sa.Column("id", BigId, nullable=False),
        sa.Column("inbox_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("started", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Integer(), nullable=False),
        sa.Column("timed_out", sa.Integer(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_automation_flows_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_flows")),
        sa.UniqueConstraint("inbox_id", "name", name=op.f("uq_automation_flows_inbox_id_name")),
    )
    op.create_table(
        "automation_flow_versions",
        sa.Column("flow_id", BigId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["automation_flows.id"],
            name=op.f("fk_automation_flow_versions_flow_id_automation_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flow_id", "version", name=op.f("pk_automation_flow_versions")),
    )
    op.create_table(
        "automation_flow_states",
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("flow_id", BigId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("started_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_automation_flow_states_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["automation_flows.id"],
            name=op.f("fk_automation_flow_states_flow_id_automation_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_automation_flow_states")),
    )
    op.create_index(
        "ix_automation_flow_states_expires", "automation_flow_states", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_automation_flow_states_flow_id"),
        "automation_flow_states",
        ["flow_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_automation_flow_states_flow_id"), table_name="automation_flow_states")
    op.drop_index("ix_automation_flow_states_expires", table_name="automation_flow_states")
    op.drop_table("automation_flow_states")
    op.drop_table("automation_flow_versions")
    op.drop_table("automation_flows")
