"""State changes of stored deliveries: replaying the unprocessable ones after an upgrade."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.db import queue_event
from wadesk.ingest.models import WebhookDelivery


async def do_replay_deliveries(
    session: AsyncSession, *, actor: Actor, ids: list[int] | None = None
) -> int:
    """Mark unprocessable deliveries pending again; the processor picks them up after commit."""
    statement = (
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "unprocessable")
        .values(status="pending", error=None)
    )
    if ids is not None:
        statement = statement.where(WebhookDelivery.id.in_(ids))
    result = await session.execute(statement)
    count = int(getattr(result, "rowcount", 0) or 0)
    await record(
        session,
        actor,
        "webhook_delivery.replay",
        "webhook_delivery",
        None,
        {"ids": ids, "count": count},
    )
    queue_event(session, "ingest.replayed", {"count": count})
    return count
