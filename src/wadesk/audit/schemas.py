"""The audit trail in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    created_at: datetime
    actor_type: str = Field(description="user | token | system | customer | anonymous")
    actor_id: str | None
    actor: str | None = Field(default=None, description="The person's email, when known")
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    chain_seq: int | None = Field(
        description="Place in the hash chain; null for a row written in the last moments,"
        " before the chainer linked it"
    )
    prev_hash: str | None
    hash: str | None


class ChainReport(BaseModel):
    ok: bool
    checked: int = Field(description="Rows whose hash and link were verified")
    head: str = Field(description="The hash of the last verified row: keep it outside wadesk")
    broken_row_id: int | None = None
    reason: str | None = None
    unchained: int = Field(
        default=0, description="Rows still waiting for the chainer (written in the last moments)"
    )
