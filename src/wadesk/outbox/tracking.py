"""Tie a provider's status to a send whose answer never arrived.

The Graph API has no idempotency key. When a send times out after the request was written,
WhatsApp may have accepted the message (it usually has), and sending it again at once can
deliver it twice. Every send therefore carries wadesk's message reference in
``biz_opaque_callback_data``, which Meta echoes in the message's status webhooks: the
worker waits a while for such a status before sending again, and a status that arrives
adopts the send — the message gets its provider id, the outbox row is done, and nothing is
sent twice (docs/decisions/0005-unanswered-sends.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.channels.base import StatusUpdate
from wadesk.conversations.models import Message
from wadesk.db import utcnow
from wadesk.outbox.models import OutboxItem

log = structlog.get_logger(__name__)

PREFIX = "wadesk:message:"


def tracking_for(message_id: int) -> str:
    return f"{PREFIX}{message_id}"


def message_id_from(callback_data: str | None) -> int | None:
    """The message id in a status's callback data, or None if it is not wadesk's."""
    if not callback_data or not callback_data.startswith(PREFIX):
        return None
    digits = callback_data[len(PREFIX) :]
    if not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


async def adopt_unanswered_sends(
    session: AsyncSession, inbox_id: int, statuses: Iterable[StatusUpdate]
) -> dict[str, Message]:
    """Give the statuses' provider ids to this inbox's outbound messages that were sent
    without an answer (no provider id yet) and are named in the statuses' callback data.
    Their outbox rows are done, and the rows queued behind them for the same customer are
    due at once. Returns the adopted messages by provider id."""
    wanted: dict[int, str] = {}
    for status in sorted(statuses, key=lambda s: s.timestamp):
        message_id = message_id_from(status.callback_data)
        if message_id is not None:
            wanted.setdefault(message_id, status.external_id[:128])
    if not wanted:
        return {}
    found = (
        await session.scalars(
            select(Message)
            .where(
                Message.id.in_(sorted(wanted)),
                Message.inbox_id == inbox_id,
                Message.direction == "out",
                Message.external_id.is_(None),
            )
            .order_by(Message.id)
            .with_for_update()
        )
    ).all()
    if not found:
        return {}
    adopted: dict[str, Message] = {}
    for message in found:
        message.external_id = wanted[message.id]
        adopted[wanted[message.id]] = message
    now = utcnow()
    rows = (
        await session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.message_id.in_([m.id for m in found]),
                OutboxItem.state == "pending",
            )
            .values(state="done", last_error=None, lease_owner=None, updated_at=now)
            .returning(OutboxItem.recipient)
        )
    ).scalars()
    recipients = sorted(set(rows))
    if recipients:
        await session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.state == "pending",
                OutboxItem.inbox_id == inbox_id,
                OutboxItem.recipient.in_(recipients),
                OutboxItem.lease_owner.is_(None),
                OutboxItem.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
    log.info("outbox.send_confirmed_by_status", message_ids=[m.id for m in found])
    return adopted
