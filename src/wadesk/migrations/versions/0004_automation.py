"""automation: rules, integrations, jobs, per-customer state, business hours, quick replies,
message templates

Revision ID: 0004_automation
Revises: 0003_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.crypto
import wadesk.db

revision = "0004_automation"
down_revision = "0003_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_integrations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("secret_header", sa.String(length=100), nullable=True),
        sa.Column("secret", wadesk.crypto.EncryptedText(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_integrations")),
        sa.UniqueConstraint("name", name=op.f("uq_automation_integrations_name")),
    )
    op.create_table(
        "automation_inbox_settings",
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("greeting_enabled", sa.Boolean(), nullable=False),
        sa.Column("greeting_text", sa.Text(), nullable=False),
        sa.Column("greeting_after_days", sa.Integer(), nullable=False),
        sa.Column("away_enabled", sa.Boolean(), nullable=False),
        sa.Column("away_text", sa.Text(), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_automation_inbox_settings_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_automation_inbox_settings")),
    )
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("after_handoff", sa.Boolean(), nullable=False),
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
            name=op.f("fk_automation_rules_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
    )
    op.create_index(
        "ix_automation_rules_inbox",
        "automation_rules",
        ["inbox_id", "position", "id"],
        unique=False,
    )
    op.create_table(
        "message_templates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("rejected_reason", sa.String(length=200), nullable=True),
        sa.Column("synced_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_message_templates_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint(
            "inbox_id", "name", "language", name=op.f("uq_message_templates_inbox_id_name_language")
        ),
    )
    op.create_table(
        "quick_replies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("shortcut", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("media_link", sa.String(length=2000), nullable=True),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_quick_replies_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quick_replies")),
    )
    op.create_index("ix_quick_replies_shortcut", "quick_replies", ["shortcut"], unique=False)
    op.create_table(
        "automation_contact_states",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_greeting_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_away_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "pending_rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("pending_step", sa.Integer(), nullable=True),
        sa.Column("pending_data", sa.JSON(), nullable=True),
        sa.Column("pending_until", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replies_window_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replies_in_window", sa.Integer(), nullable=False),
        sa.Column("last_reply_text", sa.String(length=500), nullable=True),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_automation_contact_states_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_automation_contact_states_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pending_rule_id"],
            ["automation_rules.id"],
            name=op.f("fk_automation_contact_states_pending_rule_id_automation_rules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_contact_states")),
        sa.UniqueConstraint(
            "inbox_id", "contact_id", name=op.f("uq_automation_contact_states_inbox_id_contact_id")
        ),
    )
    op.create_table(
        "automation_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("opened", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_automation_jobs_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_automation_jobs_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_automation_jobs_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_jobs")),
    )
    op.create_index(
        op.f("ix_automation_jobs_conversation_id"),
        "automation_jobs",
        ["conversation_id"],
        unique=False,
    )
    op.create_index(
        "ix_automation_jobs_due",
        "automation_jobs",
        ["next_attempt_at", "id"],
        unique=False,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_index(
        "ix_automation_jobs_due",
        table_name="automation_jobs",
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(op.f("ix_automation_jobs_conversation_id"), table_name="automation_jobs")
    op.drop_table("automation_jobs")
    op.drop_table("automation_contact_states")
    op.drop_index("ix_quick_replies_shortcut", table_name="quick_replies")
    op.drop_table("quick_replies")
    op.drop_table("message_templates")
    op.drop_index("ix_automation_rules_inbox", table_name="automation_rules")
    op.drop_table("automation_rules")
    op.drop_table("automation_inbox_settings")
    op.drop_table("automation_integrations")
    # ### end Alembic commands ###
