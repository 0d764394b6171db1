"""Writing the audit trail: in the same transaction as the change it describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # user | token | system | customer
    id: str | None = None
    ip: str | None = None
    user_id: int | None = None

    @classmethod
    def system(cls, name: str = "wadesk") -> Actor:
        return cls(type="system", id=name)


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: int | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=actor.ip,
            details=details or {},
        )
    )
