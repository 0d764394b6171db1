"""Record successful sends with group commit.

Each send used to record its result in a transaction of its own: five statements and a
BEGIN/COMMIT round trip per message, a large part of the outbox's cost on a machine where a
round trip to PostgreSQL costs ~150 µs of CPU. Sends that finish while a recording is in
flight wait for the next one, which records them all in one transaction (as the webhook
writer does, docs/decisions/0002). A lone send is never delayed: the first starts a
recording at once. The window between the provider's answer and the record is unchanged in
kind (a crash inside it means the row is sent again after its lease) and a few ms longer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.inbound import apply_parked_for
from wadesk.conversations.models import Message
from wadesk.db import Database, utcnow
from wadesk.groupcommit import GroupCommit, in_session
from wadesk.outbox.models import OutboxItem

MAX_PER_RECORDING = 500


@dataclass(frozen=True, slots=True)
class Sent:
    outbox_id: int
    message_id: int
    external_id: str


class SentRecorder:
    def __init__(self, db: Database) -> None:
        self._group = GroupCommit(in_session(db, record_sent), max_items=MAX_PER_RECORDING)

    async def record(self, sent: Sent) -> None:
        """Return once the send is recorded; raise if it could not be."""
        await self._group.submit(sent)


async def record_sent(session: AsyncSession, sent: list[Sent]) -> None:
    """The messages get their provider ids and ``sent`` (a status that overtook the send
    keeps its place), parked statuses apply, and the outbox rows are done."""
    now = utcnow()
    external = {s.message_id: s.external_id[:128] for s in sent}
    messages = list(
        (
            await session.scalars(
                select(Message)
                .where(Message.id.in_(sorted(external)))
                .order_by(Message.id)
                .with_for_update()  # a status webhook may be moving the same message
            )
        ).all()
    )
    for message in messages:
        message.external_id = external[message.id]
        message.status = "sent" if message.status == "queued" else message.status
        message.sent_at = message.sent_at or now
    await session.flush()
    await apply_parked_for(session, messages)
    for message in messages:
        queue_message_updated(session, message)
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id.in_(sorted(s.outbox_id for s in sent)))
        .values(state="done", last_error=None, updated_at=now)
    )
