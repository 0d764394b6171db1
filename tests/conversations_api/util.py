"""Shared set-up of the conversations API tests: an inbox with customers, people, events."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from tests.helpers import (
    create_inbox,
    create_user,
    envelope,
    logged_events,
    post_signed,
    settle,
    text_message,
)
from wadesk.audit.models import AuditEvent
from wadesk.realtime.models import EventRecord


async def world(live: Any, *, customers: int = 2) -> dict[str, Any]:
    """One inbox, ``customers`` customers who wrote once each; an admin, a member agent,
    a member supervisor and an agent of no inbox, each with a read+write(+admin) token."""
    inbox = await create_inbox(live)
    admin_id, admin = await create_user(live, email="boss@example.com", role="admin")
    agent_id, agent = await create_user(
        live,
        email="maria@example.com",
        role="agent",
        scopes=("read", "write"),
        inbox_ids=(inbox["id"],),
    )
    sup_id, sup = await create_user(
        live,
        email="sam@example.com",
        role="supervisor",
        scopes=("read", "write"),
        inbox_ids=(inbox["id"],),
    )
    out_id, outsider = await create_user(
        live, email="otto@example.com", role="agent", scopes=("read", "write")
    )
    for i in range(customers):
        await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope(
                [
                    text_message(
                        f"551199990{i:04d}",
                        f"wamid.w{i}",
                        f"hello order {i}",
                        ts=int(time.time()) - 60 + i,
                    )
                ],
                names={f"551199990{i:04d}": f"Customer Number {i}"},
            ),
        )
    await settle(live)
    listing = (
        await live.client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {admin}"})
    ).json()["items"]
    return {
        "inbox": inbox,
        "admin": (admin_id, admin),
        "agent": (agent_id, agent),
        "sup": (sup_id, sup),
        "outsider": (out_id, outsider),
        "conversations": sorted(c["id"] for c in listing),
    }


async def events(live: Any, kind: str) -> list[dict[str, Any]]:
    await logged_events(live)
    async with live.runtime.db.session() as session:
        rows = await session.scalars(
            select(EventRecord).where(EventRecord.kind == kind).order_by(EventRecord.id)
        )
        return [r.payload for r in rows.all()]


async def audit(live: Any, action: str) -> list[AuditEvent]:
    async with live.runtime.db.session() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows.all())
