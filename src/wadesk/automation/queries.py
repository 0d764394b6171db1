"""Reads of automation that other parts of the app show (no writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.automation.models import AutomationRule, FaqEntry, Flow, FlowState
from wadesk.db import utcnow


@dataclass(frozen=True, slots=True)
class FlowPosition:
    """Where a customer is in a guided flow, for the agent's side panel."""

    flow_id: int
    name: str
    version: int
    step: str
    started_at: datetime
    expires_at: datetime


async def flow_position(session: AsyncSession, conversation_id: int) -> FlowPosition | None:
    """The conversation's flow, if it is in one that has not timed out."""
    row = (
        await session.execute(
            select(FlowState, Flow.name)
            .join(Flow, Flow.id == FlowState.flow_id)
            .where(FlowState.conversation_id == conversation_id, FlowState.expires_at > utcnow())
        )
    ).first()
    if row is None:
        return None
    state, name = row
    return FlowPosition(
        flow_id=state.flow_id,
        name=name,
        version=state.version,
        step=state.step,
        started_at=state.started_at,
        expires_at=state.expires_at,
    )


async def inbox_rules(session: AsyncSession, inbox_id: int) -> list[AutomationRule]:
    """An inbox's rules in the order they are tried."""
    rows = await session.scalars(
        select(AutomationRule)
        .where(AutomationRule.inbox_id == inbox_id)
        .order_by(AutomationRule.position, AutomationRule.id)
    )
    return list(rows.all())


async def inbox_faq(session: AsyncSession, inbox_id: int) -> list[FaqEntry]:
    """An inbox's own FAQ entries (not the shared ones), oldest first."""
    rows = await session.scalars(
        select(FaqEntry).where(FaqEntry.inbox_id == inbox_id).order_by(FaqEntry.id)
    )
    return list(rows.all())
