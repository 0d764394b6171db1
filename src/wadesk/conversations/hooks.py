"""Where other domains react to conversation changes, inside the same transaction.

Inbound messages and conversation updates are stored by the conversations domain; routing and
automation must see them atomically (an assignment or an automation job is committed with the
message that caused it, or not at all). The calls are explicit, here in one place, instead of a
registry filled at import time: reading this file tells what happens after a message arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.conversations.models import Conversation


@dataclass(frozen=True, slots=True)
class InboundMessageRef:
    message_id: int
    conversation_id: int
    contact_id: int
    type: str
    text: str | None


@dataclass(slots=True)
class InboundBatch:
    """The messages one inbox received in one processed batch (duplicates excluded)."""

    inbox_id: int
    messages: list[InboundMessageRef] = field(default_factory=list)
    opened_conversation_ids: set[int] = field(default_factory=set)
    # Contacts created by this batch: no attributes, no earlier conversations (routing skips
    # looking those up).
    new_contact_ids: set[int] = field(default_factory=set)


async def after_inbound(session: AsyncSession, batch: InboundBatch) -> None:
    """New customer messages were stored (same transaction)."""
    from wadesk.automation.actions import queue_inbound_jobs  # automation: a job per message
    from wadesk.routing.actions import route_new_conversations  # routing: queue + assign

    await route_new_conversations(session, batch)
    await queue_inbound_jobs(session, batch)


async def after_conversation_change(
    session: AsyncSession, conversation: Conversation, changes: dict[str, Any]
) -> None:
    """An agent, supervisor, API client or automation changed a conversation (same transaction).

    ``changes`` maps field name to ``(before, after)``."""
    from wadesk.automation.actions import queue_change_jobs  # automation: "resolved" rules
    from wadesk.routing.actions import on_conversation_change  # routing: queue, freed slots

    await queue_change_jobs(session, conversation, changes)
    await on_conversation_change(session, conversation, changes)
