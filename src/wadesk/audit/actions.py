"""Writing the audit trail: in the same transaction as the change it describes.

Rows form one hash chain (see :mod:`wadesk.audit.chain`). The chain's tail is read and extended
under a lock held until the transaction ends, so concurrent writers never fork it: on
PostgreSQL a transaction-scoped advisory lock, on SQLite the database's single writer
(every transaction starts with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.chain import GENESIS, normalise_details, row_hash
from wadesk.audit.models import AuditEvent
from wadesk.config import get_settings
from wadesk.db import utcnow

# pg_advisory_xact_lock key of the audit chain ("wadesk-audit" as a 64-bit number).
AUDIT_LOCK_KEY = int.from_bytes(b"wdaudit!", "big") & 0x7FFF_FFFF_FFFF_FFFF
STAFF_ACTORS = ("user", "token")


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # user | token | system | customer | anonymous
    id: str | None = None
    ip: str | None = None
    user_id: int | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, name: str = "wadesk") -> Actor:
        return cls(type="system", id=name)

    def with_request(self, ip: str | None, user_agent: str | None) -> Actor:
        return replace(self, ip=ip, user_agent=(user_agent or None) and user_agent[:300])


async def lock_chain(session: AsyncSession) -> None:
    """Serialise writers of the chain until this transaction ends."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: int | str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    await lock_chain(session)
    previous = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        created_at=utcnow(),
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=actor.ip,
        user_agent=actor.user_agent,
        details=normalise_details(details),
        prev_hash=previous or GENESIS,
    )
    event.hash = row_hash(
        get_settings().resolved_secret_key(),
        prev_hash=event.prev_hash,
        created_at=event.created_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        ip=event.ip,
        user_agent=event.user_agent,
        details=event.details,
    )
    session.add(event)
    await session.flush()
    return event


async def record_view(
    session: AsyncSession,
    actor: Actor,
    target_type: str,
    target_id: int | str,
    *,
    within_minutes: int | None = None,
) -> None:
    """Record that a person (or their token) looked at a contact's data or a conversation.

    LGPD/GDPR ask who looked at personal data; one row per person, target and
    ``WADESK_AUDIT_VIEW_DEDUP_MINUTES`` keeps an agent's screen refreshes from flooding the log.
    """
    if actor.type not in STAFF_ACTORS:
        return
    minutes = get_settings().audit_view_dedup_minutes if within_minutes is None else within_minutes
    action = f"{target_type}.view"
    if minutes > 0:
        recent = await session.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.target_type == target_type,
                AuditEvent.target_id == str(target_id),
                AuditEvent.action == action,
                AuditEvent.actor_type == actor.type,
                AuditEvent.actor_id == actor.id,
                AuditEvent.created_at > utcnow() - timedelta(minutes=minutes),
            )
            .limit(1)
        )
        if recent is not None:
            return
    await record(session, actor, action, target_type, target_id)
