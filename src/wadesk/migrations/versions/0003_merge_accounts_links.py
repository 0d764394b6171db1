"""Join the accounts-security and links branches (built side by side on 0001).

Revision ID: 0003_merge
Revises: 0002_accounts, 0002_links
"""

from __future__ import annotations

revision = "0003_merge"
down_revision = ("0002_accounts", "0002_links")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the two branches touch different tables."""


def downgrade() -> None:
    """Nothing to change."""
