"""Store what a channel delivered: inbound messages and status updates, in bulk.

Called by the ingest processor with the parsed contents of a batch of webhook deliveries,
inside one transaction. Duplicates (Meta retries, concurrent deliveries, replays) insert
nothing: ``(inbox_id, external_id)`` is a unique key and inserts use ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.bulk import bulk_insert
from wadesk.channels.base import InboundMessage, StatusUpdate
from wadesk.contacts.actions import resolve_whatsapp_senders
from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.hooks import InboundBatch, InboundMessageRef, after_inbound
from wadesk.conversations.models import Conversation, Message, PendingStatus
from wadesk.db import insert_for, queue_event, utcnow
from wadesk.links.attribution import attribute_new_conversations
from wadesk.outbox.tracking import adopt_unanswered_sends
from wadesk.pgarrays import among

STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
PREVIEW_BY_TYPE = {
    "image": "📷 Photo",
    "audio": "🎤 Audio",
    "video": "🎥 Video",
    "document": "📄 Document",
    "sticker": "Sticker",
    "location": "📍 Location",
    "contacts": "👤 Contact",
    "reaction": "Reaction",
    "order": "🛒 Order",
    "unsupported": "Unsupported message",
}

# Every ingest round runs these; built once (docs/benchmarks.md).
_KNOWN_IDS = select(Message.external_id).where(
    Message.inbox_id == bindparam("inbox_id"), among(Message.external_id)
)
_UNRESOLVED = text("status != 'resolved'")  # the partial unique index of open conversations
_ACTIVE = select(Conversation.contact_id, Conversation.id).where(
    Conversation.inbox_id == bindparam("inbox_id"),
    among(Conversation.contact_id),
    Conversation.status != "resolved",
)


@dataclass
class InboundOutcome:
    created: int = 0
    duplicates: int = 0
    statuses_applied: int = 0
    statuses_pending: int = 0
    message_ids: list[int] = field(default_factory=list)


def preview_of(kind: str, text: str | None) -> str:
    if text:
        return text[:200]
    return PREVIEW_BY_TYPE.get(kind, kind)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value


async def store_inbound(
    session: AsyncSession, inbox_id: int, items: list[InboundMessage]
) -> InboundOutcome:
    """Contacts, conversations and messages for the inbound messages of one inbox."""
    outcome = InboundOutcome()
    unique: dict[str, InboundMessage] = {}
    for item in items:
        unique.setdefault(item.external_id[:128], item)
    if not unique:
        return outcome
    existing: set[str] = set(
        ext
        for ext in (
            await session.scalars(_KNOWN_IDS, {"inbox_id": inbox_id, "ids": list(unique)})
        ).all()
        if ext is not None
    )
    fresh = [item for ext, item in unique.items() if ext not in existing]
    outcome.duplicates = len(items) - len(fresh)
    await _upgrade_unsupported(session, inbox_id, [unique[e] for e in existing])
    if not fresh:
        return outcome
    fresh.sort(key=lambda m: (m.timestamp, m.external_id))
    senders = {item.sender: item.sender_name for item in fresh}
    new_contacts: set[int] = set()
    contact_ids = await resolve_whatsapp_senders(session, senders, new_contacts)
    openings: dict[int, Opening] = {}
    for item in fresh:
        cid = contact_ids[item.sender]
        count = openings[cid].unread if cid in openings else 0
        openings[cid] = Opening(item.timestamp, preview_of(item.type, item.text), count + 1)
    conversation_ids, opened = await _active_conversations(session, inbox_id, openings)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for item in fresh:
        contact_id = contact_ids[item.sender]
        rows.append(
            {
                "inbox_id": inbox_id,
                "conversation_id": conversation_ids[contact_id],
                "direction": "in",
                "type": item.type,
                "text": item.text,
                "content": item.content,
                "external_id": item.external_id[:128],
                "reply_to_external_id": _clip(item.reply_to_external_id, 128),
                "referral": item.referral,
                "status": "received",
                "media_id": _clip(item.media.provider_id, 128) if item.media else None,
                "media_mime": _clip(item.media.mime_type, 120) if item.media else None,
                "media_filename": _clip(item.media.filename, 255) if item.media else None,
                "media_sha256": _clip(item.media.sha256, 64) if item.media else None,
                "media_status": "pending" if item.media else None,
                "media_attempts": 0,
                "provider_timestamp": item.timestamp,
                "created_at": now,
            }
        )
    result = await session.execute(
        *bulk_insert(
            session.bind.dialect.name,
            cast(Table, Message.__table__),
            rows,
            skip_conflicts=("inbox_id", "external_id"),
            returning=("id", "external_id", "conversation_id"),
        )
    )
    inserted = result.all()
    outcome.created = len(inserted)
    outcome.duplicates += len(rows) - len(inserted)
    inserted_ext = {ext for _, ext, _ in inserted}
    by_conversation: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["external_id"] in inserted_ext:
            by_conversation[row["conversation_id"]].append(row)
    if opened:
        # Which click-to-chat link or ad brought each new conversation (links/attribution.py).
        contact_of = {conversation_ids[cid]: cid for cid in openings}
        await attribute_new_conversations(
            session,
            inbox_id,
            [
                (
                    row["conversation_id"],
                    contact_of[row["conversation_id"]],
                    row["text"],
                    row["referral"],
                )
                for row in rows
                if row["conversation_id"] in opened and row["external_id"] in inserted_ext
            ],
        )
    updates = []
    for conversation_id, conv_rows in sorted(by_conversation.items()):
        if conversation_id in opened:
            continue  # opened just now with these very values
        last = conv_rows[-1]
        updates.append(
            {
                "cid": conversation_id,
                "last_ts": max(r["provider_timestamp"] for r in conv_rows),
                "preview": preview_of(last["type"], last["text"]),
                "n": len(conv_rows),
                "now": now,
            }
        )
    if updates:
        table = cast(Table, Conversation.__table__)
        # Core executemany: one round trip for every conversation of the batch.
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("cid"))
            .values(
                last_customer_message_at=bindparam("last_ts"),
                last_activity_at=bindparam("now"),
                last_message_preview=bindparam("preview"),
                unread_count=table.c.unread_count + bindparam("n"),
                updated_at=bindparam("now"),
                # A customer writing wakes a snoozed or pending conversation.
                status="open",
                snoozed_until=None,
            ),
            updates,
        )
    for message_id, _ext, conversation_id in sorted(inserted):
        outcome.message_ids.append(message_id)
        queue_event(
            session,
            "message.created",
            {"message_id": message_id, "conversation_id": conversation_id, "inbox_id": inbox_id},
        )
    for conversation_id in by_conversation:
        queue_event(
            session,
            "conversation.updated",
            {"conversation_id": conversation_id, "inbox_id": inbox_id},
        )
    contact_of_conversation = {conv: contact for contact, conv in conversation_ids.items()}
    row_of = {row["external_id"]: row for row in rows}
    await after_inbound(
        session,
        InboundBatch(
            inbox_id=inbox_id,
            messages=[
                InboundMessageRef(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    contact_id=contact_of_conversation[conversation_id],
                    type=row_of[ext]["type"],
                    text=row_of[ext]["text"],
                )
                for message_id, ext, conversation_id in sorted(inserted)
            ],
            opened_conversation_ids=set(opened),
            new_contact_ids=new_contacts,
        ),
    )
    return outcome


async def _upgrade_unsupported(
    session: AsyncSession, inbox_id: int, items: list[InboundMessage]
) -> None:
    """A replay after an upgrade turns an 'unknown type' placeholder into the real message."""
    readable = [item for item in items if item.type != "unsupported"]
    for item in readable:
        await session.execute(
            update(Message)
            .where(
                Message.inbox_id == inbox_id,
                Message.external_id == item.external_id[:128],
                Message.type == "unsupported",
            )
            .values(type=item.type, text=item.text, content=item.content)
        )


@dataclass(frozen=True, slots=True)
class Opening:
    """What a conversation opened by this batch starts with (saves an UPDATE per new one)."""

    last_customer_message_at: datetime
    preview: str
    unread: int


async def _active_conversations(
    session: AsyncSession, inbox_id: int, openings: dict[int, Opening]
) -> tuple[dict[int, int], set[int]]:
    """The unresolved conversation of each contact in this inbox, opening one where needed.
    Returns contact id -> conversation id, and the ids of the conversations opened here."""
    contact_ids = sorted(openings)

    async def load() -> dict[int, int]:
        rows = await session.execute(_ACTIVE, {"inbox_id": inbox_id, "ids": contact_ids})
        return {int(c): int(i) for c, i in rows.tuples()}

    found = await load()
    missing = [cid for cid in contact_ids if cid not in found]
    if not missing:
        return found, set()
    now = utcnow()
    result = await session.execute(
        *bulk_insert(
            session.bind.dialect.name,
            cast(Table, Conversation.__table__),
            [
                {
                    "inbox_id": inbox_id,
                    "contact_id": cid,
                    "status": "open",
                    "priority": "none",
                    "unread_count": openings[cid].unread,
                    "last_customer_message_at": openings[cid].last_customer_message_at,
                    "last_message_preview": openings[cid].preview,
                    "last_activity_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for cid in missing
            ],
            skip_conflicts=("inbox_id", "contact_id"),
            conflict_where=_UNRESOLVED,
            returning=("contact_id", "id"),
        )
    )
    opened = {int(c): int(i) for c, i in result.tuples()}
    if len(opened) < len(missing):  # another process opened some first: use theirs
        found = await load()
    found.update(opened)
    for cid, conversation_id in opened.items():
        queue_event(
            session,
            "conversation.created",
            {"conversation_id": conversation_id, "inbox_id": inbox_id, "contact_id": cid},
        )
    return found, set(opened.values())


async def apply_statuses(
    session: AsyncSession, inbox_id: int, statuses: list[StatusUpdate]
) -> InboundOutcome:
    """Move messages forward (sent -> delivered -> read, or failed); park unknown ones."""
    outcome = InboundOutcome()
    if not statuses:
        return outcome
    ids = sorted({s.external_id[:128] for s in statuses})
    messages = {
        m.external_id: m
        for m in (
            await session.scalars(
                select(Message)
                .where(Message.inbox_id == inbox_id, Message.external_id.in_(ids))
                .order_by(Message.id)
                # Locked: another process's batch may carry a status of the same message, and
                # a status read before the other commits would be written back over it.
                .with_for_update()
            )
        ).all()
    }
    unknown = [s for s in statuses if s.callback_data and s.external_id[:128] not in messages]
    if unknown:
        messages.update(await adopt_unanswered_sends(session, inbox_id, unknown))
    parked: list[dict[str, Any]] = []
    for status in sorted(statuses, key=lambda s: (s.timestamp, STATUS_RANK.get(s.status, 9))):
        message = messages.get(status.external_id[:128])
        if message is None:
            parked.append(
                {
                    "inbox_id": inbox_id,
                    "external_id": status.external_id[:128],
                    "status": status.status,
                    "occurred_at": status.timestamp,
                    "error_code": _clip(status.error_code, 20),
                    "error_title": _clip(status.error_title, 500),
                    "created_at": utcnow(),
                }
            )
            continue
        if advance_status(
            message, status.status, status.timestamp, status.error_code, status.error_title
        ):
            outcome.statuses_applied += 1
            queue_message_updated(session, message)
    if parked:
        insert = insert_for(session.bind.dialect.name)
        await session.execute(
            insert(PendingStatus.__table__).on_conflict_do_nothing(
                index_elements=["inbox_id", "external_id", "status"]
            ),
            parked,
        )
        outcome.statuses_pending = len(parked)
    return outcome


def advance_status(
    message: Message,
    status: str,
    at: datetime,
    error_code: str | None = None,
    error_title: str | None = None,
) -> bool:
    """Apply a status if it moves the message forward. Returns whether anything changed.

    Statuses never go back. ``read`` implies ``delivered`` implies ``sent`` (their times are
    filled in when missing). ``failed`` is final, unless the message was already delivered.
    """
    if message.direction != "out" or status == "deleted":
        return False
    if message.status == "failed":
        return False
    if status == "failed":
        if message.status in ("delivered", "read"):
            return False
        message.status = "failed"
        message.failed_at = at
        message.error_code = _clip(error_code, 20)
        message.error_title = _clip(error_title, 500)
        return True
    if STATUS_RANK.get(status, -1) <= STATUS_RANK.get(message.status, -1):
        return False
    message.status = status
    if message.sent_at is None:
        message.sent_at = at
    if status in ("delivered", "read") and message.delivered_at is None:
        message.delivered_at = at
    if status == "read":
        message.read_at = at
    return True


async def apply_parked_statuses(session: AsyncSession, limit: int = 500) -> int:
    """Apply parked statuses whose message now exists (e.g. the send's answer came late)."""
    rows = (
        await session.execute(
            select(PendingStatus, Message)
            .join(
                Message,
                and_(
                    Message.inbox_id == PendingStatus.inbox_id,
                    Message.external_id == PendingStatus.external_id,
                ),
            )
            .order_by(PendingStatus.occurred_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # what another transaction holds: next time
        )
    ).all()
    applied = 0
    for pending, message in rows:
        if advance_status(
            message, pending.status, pending.occurred_at, pending.error_code, pending.error_title
        ):
            applied += 1
            queue_message_updated(session, message)
        await session.delete(pending)
    return applied


async def apply_parked_for(session: AsyncSession, messages: list[Message]) -> None:
    """Apply the parked statuses of messages that just got their provider ids (one query)."""
    by_id = {(m.inbox_id, m.external_id): m for m in messages if m.external_id is not None}
    if not by_id:
        return
    parked = (
        await session.scalars(
            select(PendingStatus)
            .where(PendingStatus.external_id.in_(sorted({e for _, e in by_id})))
            .order_by(PendingStatus.occurred_at, PendingStatus.id)
        )
    ).all()
    for pending in parked:
        message = by_id.get((pending.inbox_id, pending.external_id))
        if message is None:
            continue  # the same provider id in another inbox: not ours
        if advance_status(
            message, pending.status, pending.occurred_at, pending.error_code, pending.error_title
        ):
            queue_message_updated(session, message)
        await session.delete(pending)
