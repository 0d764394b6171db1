"""accounts security: web sessions, MFA, sign-in throttles, MFA policy, audit hash chain

Revision ID: 0002_accounts
Revises: 0001
Create Date: 2026-11-23 16:40:00

Existing audit rows are chained in id order on upgrade (with WADESK_SECRET_KEY), then the
hash columns become NOT NULL. On PostgreSQL a trigger refuses UPDATE and DELETE of audit rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wadesk.crypto
import wadesk.db

revision = "0002_accounts"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION wadesk_audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION wadesk_audit_events_append_only()
"""


def _chain_existing_rows() -> None:
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
    rows = connection.execute(sa.select(audit).order_by(audit.c.id)).mappings().all()
    if not rows:
        return
    key = get_settings().resolved_secret_key()
    previous = GENESIS
    for row in rows:
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
        connection.execute(
            audit.update()
            .where(audit.c.id == row["id"])
            .values(prev_hash=previous, hash=digest, details=row["details"] or {})
        )
        previous = digest


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("password_changed_at", "last_sign_in_at", "deactivated_at"):
            batch_op.add_column(
                sa.Column(name, wadesk.db.UTCDateTime(timezone=True), nullable=True)
            )
        batch_op.add_column(sa.Column("mfa_secret", wadesk.crypto.EncryptedText(), nullable=True))
        batch_op.add_column(
            sa.Column("mfa_pending_secret", wadesk.crypto.EncryptedText(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("mfa_enabled_at", wadesk.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("mfa_last_step", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_ip", sa.String(length=64), nullable=True))

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_agent", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_rows()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(
            "ix_audit_events_target", ["target_type", "target_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_actor", ["actor_type", "actor_id", "id"], unique=False
        )

    op.create_table(
        "user_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reauth_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("mfa_method", sa.String(length=20), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("revoked_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_user_sessions_user_id_revoked_at", ["user_id", "revoked_at"], unique=False
        )

    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mfa_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_recovery_codes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", wadesk.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttles")),
    )

    op.create_table(
        "security_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mfa_policy", sa.String(length=20), nullable=False),
        sa.Column("updated_at", wadesk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_security_policy_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_policy")),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS wadesk_audit_events_append_only()")

    op.drop_table("security_policy")
    op.drop_table("login_throttles")
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_recovery_codes_user_id"))
    op.drop_table("mfa_recovery_codes")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_user_sessions_user_id_revoked_at")
    op.drop_table("user_sessions")

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_actor")
        batch_op.drop_index("ix_audit_events_target")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("user_agent")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_ip")

    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in (
            "mfa_last_step",
            "mfa_enabled_at",
            "mfa_pending_secret",
            "mfa_secret",
            "deactivated_at",
            "last_sign_in_at",
            "password_changed_at",
        ):
            batch_op.drop_column(name)
