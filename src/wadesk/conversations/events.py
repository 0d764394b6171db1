"""Events about messages, in one shape wherever they are raised."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.conversations.models import Message
from wadesk.db import queue_event


def queue_message_updated(session: AsyncSession, message: Message) -> None:
    queue_event(
        session,
        "message.updated",
        {
            "message_id": message.id,
            "conversation_id": message.conversation_id,
            "inbox_id": message.inbox_id,
            "status": message.status,
        },
    )
