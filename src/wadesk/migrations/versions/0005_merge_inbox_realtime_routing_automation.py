"""Join the four branches built side by side on 0003: the inbox's conversation features, the
realtime event log, routing and automation.

Revision ID: 0005_merge
Revises: 0004_inbox, 0004_events, 0004_routing, 0004_automation
"""

from __future__ import annotations

revision = "0005_merge"
down_revision = ("0004_inbox", "0004_events", "0004_routing", "0004_automation")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: each branch brings its own tables and columns."""


def downgrade() -> None:
    """Nothing to change."""
