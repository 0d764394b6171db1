"""Writing the audit trail: in the same transaction as the change it describes.

Rows form one hash chain (see :mod:`wadesk.audit.chain`). On PostgreSQL a row is written
unchained and takes no lock, so audited transactions do not queue behind one another; the
chainer (:mod:`wadesk.audit.chainer`) links committed rows a moment later, in the order they
became visible (docs/decisions/0014). On SQLite, whose writers queue anyway (every transaction
starts with ``BEGIN IMMEDIATE``), rows are linked as they are written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.chain import link, normalise_details
from wadesk.audit.models import AuditEvent
from wadesk.audit.queries import chain_tail
from wadesk.config import get_settings
from wadesk.db import utcnow

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


AuditItem = tuple[str, str | None, int | str | None, dict[str, Any] | None]


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: int | str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return (await record_many(session, actor, [(action, target_type, target_id, details)]))[0]


async def record_many(
    session: AsyncSession, actor: Actor, items: list[AuditItem]
) -> list[AuditEvent]:
    """Audit rows for changes made in this transaction: (action, target type, target id,
    details) each, in order, one flush."""
    now = utcnow()
    events = [
        AuditEvent(
            created_at=now,
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=actor.ip,
            user_agent=actor.user_agent,
            details=normalise_details(details),
        )
        for action, target_type, target_id, details in items
    ]
    if events and session.bind.dialect.name == "sqlite":
        await _chain_inline(session, events)
    session.add_all(events)
    await session.flush()
    return events


async def _chain_inline(session: AsyncSession, events: list[AuditEvent]) -> None:
    """SQLite has one writer at a time (``BEGIN IMMEDIATE``): the tail read here cannot move
    before this transaction ends, so rows are linked as they are written."""
    seq, previous = await chain_tail(session)
    link(get_settings().resolved_secret_key(), events, seq, previous)


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
