"""routing: agent states, per-inbox settings, the waiting queue, routing facts per
conversation (team, language, priority tags, first-response target), rules; teams

Revision ID: 0004_routing
Revises: 0003_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0004_routing"
down_revision = "0003_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("default_capacity", sa.Integer(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("returns_threshold", sa.Integer(), nullable=False),
        sa.Column("spend_threshold", sa.Float(), nullable=False),
        sa.Column("frequent_threshold", sa.Integer(), nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_config")),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("match_count", sa.Integer(), nullable=False),
        sa.Column("last_matched_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index("ix_routing_rules_position", "routing_rules", ["position", "id"], unique=False)
    op.create_table(
        "teams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("routing_strategy", sa.String(length=20), nullable=True),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "routing_agents",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("availability", sa.String(length=10), nullable=False),
        sa.Column("auto_offline_from", sa.String(length=10), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("last_assigned_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status_changed_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("assigned_total", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_routing_agents_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_routing_agents")),
    )
    op.create_table(
        "routing_inbox_settings",
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("sticky_days", sa.Integer(), nullable=False),
        sa.Column("offline_behaviour", sa.String(length=10), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_routing_inbox_settings_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_routing_inbox_settings")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_user_id"), "team_members", ["user_id"], unique=False)
    op.create_table(
        "routing_conversations",
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("matched_rules", sa.JSON(), nullable=False),
        sa.Column("evaluated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_response_due_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("breached_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_routing_conversations_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_routing_conversations_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_routing_conversations")),
    )
    op.create_index(
        "ix_routing_conversations_due",
        "routing_conversations",
        ["first_response_at", "first_response_due_at"],
        unique=False,
    )
    op.create_table(
        "routing_queue",
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column(
            "sticky_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_routing_queue_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_routing_queue_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sticky_user_id"],
            ["users.id"],
            name=op.f("fk_routing_queue_sticky_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_routing_queue_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_routing_queue")),
    )
    op.create_index(op.f("ix_routing_queue_inbox_id"), "routing_queue", ["inbox_id"], unique=False)
    op.create_index(
        "ix_routing_queue_order",
        "routing_queue",
        ["rank", "enqueued_at", "conversation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_routing_queue_order", table_name="routing_queue")
    op.drop_index(op.f("ix_routing_queue_inbox_id"), table_name="routing_queue")
    op.drop_table("routing_queue")
    op.drop_index("ix_routing_conversations_due", table_name="routing_conversations")
    op.drop_table("routing_conversations")
    op.drop_index(op.f("ix_team_members_user_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("routing_inbox_settings")
    op.drop_table("routing_agents")
    op.drop_table("teams")
    op.drop_index("ix_routing_rules_position", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_table("routing_config")
