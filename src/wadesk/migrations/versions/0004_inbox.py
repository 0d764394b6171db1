"""agent inbox: mentions in private notes, uploads to send, list and search indexes

Revision ID: 0004_inbox
Revises: 0003_merge
Create Date: 2026-11-23 18:40:00

On PostgreSQL, message text search uses a trigram GIN index (pg_trgm). The extension is
created when the database user may; without it the index is skipped and search still works
(a sequential scan). Private notes are messages with status "note": no schema change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0004_inbox"
down_revision = "0003_merge"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mentions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("author_user_id", BigId, nullable=True),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_mentions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_mentions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mentions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["users.id"],
            name=op.f("fk_mentions_author_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentions")),
        sa.UniqueConstraint("message_id", "user_id", name=op.f("uq_mentions_message_id_user_id")),
    )
    op.create_index(
        op.f("ix_mentions_conversation_id"), "mentions", ["conversation_id"], unique=False
    )
    op.create_index("ix_mentions_user", "mentions", ["user_id", "read_at", "id"], unique=False)
    op.create_table(
        "uploads",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("mime_type", sa.String(length=120), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_uploads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_user_id"), "uploads", ["user_id"], unique=False)
    op.create_index(
        "ix_conversations_assignee_activity",
        "conversations",
        ["assignee_id", "last_activity_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_conversations_status_activity",
        "conversations",
        ["status", "last_activity_at", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; "
            "EXCEPTION WHEN insufficient_privilege OR undefined_file THEN "
            "RAISE NOTICE 'pg_trgm unavailable: message search without an index'; END $$"
        )
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN "
            "CREATE INDEX ix_messages_text_trgm ON messages USING gin (text gin_trgm_ops); "
            "CREATE INDEX ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops); "
            "END IF; END $$"
        )
    else:
        op.create_index("ix_messages_text_trgm", "messages", ["text"], sqlite_where=sa.text("0"))
        op.create_index("ix_contacts_name_trgm", "contacts", ["name"], sqlite_where=sa.text("0"))


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_messages_text_trgm")
    op.execute("DROP INDEX IF EXISTS ix_contacts_name_trgm")
    op.drop_index("ix_conversations_status_activity", table_name="conversations")
    op.drop_index("ix_conversations_assignee_activity", table_name="conversations")
    op.drop_index(op.f("ix_uploads_user_id"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_index("ix_mentions_user", table_name="mentions")
    op.drop_index(op.f("ix_mentions_conversation_id"), table_name="mentions")
    op.drop_table("mentions")
