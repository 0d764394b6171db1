"""click-to-chat links: links, clicks per day, daily visitor hashes, attributions; contacts'
first and last source

Revision ID: 0002_links
Revises: 0001
Create Date: 2026-11-23 16:30:44

Downgrading drops the contacts' source columns in place (ALTER TABLE ... DROP COLUMN on
SQLite 3.35+ too): rebuilding the contacts table would cascade to its conversations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.db

revision = "0002_links"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("ref_code", sa.String(length=16), nullable=False),
        sa.Column("include_ref", sa.Boolean(), nullable=False),
        sa.Column("ref_label", sa.String(length=30), nullable=False),
        sa.Column("phone_e164", sa.String(length=32), nullable=False),
        sa.Column("inbox_id", BigId, nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("cta_label", sa.String(length=60), nullable=False),
        sa.Column("cta_translations", sa.JSON(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("ad_source_id", sa.String(length=64), nullable=True),
        sa.Column("widget", sa.JSON(), nullable=False),
        sa.Column("expires_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_by_user_id", BigId, nullable=True),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_links_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_links_inbox_id_inboxes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("ad_source_id", name=op.f("uq_links_ad_source_id")),
        sa.UniqueConstraint("ref_code", name=op.f("uq_links_ref_code")),
        sa.UniqueConstraint("slug", name=op.f("uq_links_slug")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_campaign", ["campaign", "id"], unique=False)
        batch_op.create_index(
            "ix_links_creator", ["created_by_user_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_links_inbox_id"), ["inbox_id"], unique=False)

    op.create_table(
        "link_attributions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("inbox_id", BigId, nullable=False),
        sa.Column("matched_by", sa.String(length=20), nullable=False),
        sa.Column("attributed_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ad_source_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_link_attributions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_link_attributions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_link_attributions_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_link_attributions_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_attributions")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_link_attributions_conversation_id")),
    )
    with op.batch_alter_table("link_attributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_link_attributions_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_link_attributions_link", ["link_id", "attributed_at"], unique=False
        )

    op.create_table(
        "link_click_days",
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_link_click_days_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "day", name=op.f("pk_link_click_days")),
    )
    op.create_table(
        "link_click_visitors",
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_link_click_visitors_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "day", "visitor", name=op.f("pk_link_click_visitors")),
    )
    with op.batch_alter_table("link_click_visitors", schema=None) as batch_op:
        batch_op.create_index("ix_link_click_visitors_day", ["day"], unique=False)

    # ADD COLUMN in place on both backends (no table rebuild).
    op.add_column("contacts", sa.Column("first_source", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("contacts", sa.Column("last_source", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE contacts DROP COLUMN last_source")
        op.execute("ALTER TABLE contacts DROP COLUMN first_source")
    else:
        op.drop_column("contacts", "last_source")
        op.drop_column("contacts", "first_source")

    with op.batch_alter_table("link_click_visitors", schema=None) as batch_op:
        batch_op.drop_index("ix_link_click_visitors_day")
    op.drop_table("link_click_visitors")
    op.drop_table("link_click_days")
    with op.batch_alter_table("link_attributions", schema=None) as batch_op:
        batch_op.drop_index("ix_link_attributions_link")
        batch_op.drop_index(batch_op.f("ix_link_attributions_contact_id"))
    op.drop_table("link_attributions")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_links_inbox_id"))
        batch_op.drop_index("ix_links_creator")
        batch_op.drop_index("ix_links_campaign")
    op.drop_table("links")
