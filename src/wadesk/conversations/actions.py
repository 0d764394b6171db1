"""State changes of conversations and outbound messages.

Sending inserts the message and its outbox row in one transaction: nothing is sent before
it is committed, and a worker that dies leaves the row to be claimed again.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.contacts.models import ContactIdentity
from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.inbound import preview_of
from wadesk.conversations.models import (
    CONVERSATION_STATUSES,
    PRIORITIES,
    Conversation,
    ConversationLabel,
    IdempotencyKey,
    Label,
    Message,
)
from wadesk.db import queue_event, utcnow
from wadesk.inboxes.models import Inbox
from wadesk.outbox.models import OutboxItem

FREE_FORM_TYPES = ("text", "image", "audio", "video", "document", "sticker", "location", "reaction")
SENDABLE_TYPES = (*FREE_FORM_TYPES, "template", "interactive")


class Keep(enum.Enum):
    """Leave a field as it is (where None is a meaningful value, e.g. 'unassign')."""

    KEEP = "keep"


class SendRefused(ValueError):
    """The message cannot be queued; ``code`` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class SendRequest:
    type: str
    text: str | None = None
    content: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    media_link: str | None = None


def window_closes_at(conversation: Conversation, hours: int) -> datetime | None:
    if conversation.last_customer_message_at is None:
        return None
    return conversation.last_customer_message_at + timedelta(hours=hours)


def request_fingerprint(request: SendRequest) -> str:
    # The standard json module: content is the client's JSON, integers of any size included.
    data = json.dumps(
        {
            "type": request.type,
            "text": request.text,
            "content": request.content,
            "reply_to": request.reply_to_message_id,
            "media_link": request.media_link,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(data.encode()).hexdigest()


async def do_send_message(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation: Conversation,
    request: SendRequest,
    service_window_hours: int,
    idempotency_key: str | None = None,
) -> tuple[Message, bool]:
    """Queue a message for sending. Returns (message, created); created is False on a replay
    of the same Idempotency-Key."""
    scope = f"{actor.type}:{actor.id}"
    fingerprint = request_fingerprint(request)
    if idempotency_key is not None:
        previous = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.key == idempotency_key
            )
        )
        if previous is not None:
            if previous.request_hash != fingerprint:
                raise SendRefused(
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request.",
                    status=409,
                )
            message = await session.get(Message, previous.message_id)
            assert message is not None
            return message, False
    if request.type not in SENDABLE_TYPES:
        raise SendRefused("unsupported_type", f"Cannot send messages of type {request.type!r}.")
    now = utcnow()
    closes = window_closes_at(conversation, service_window_hours)
    if request.type != "template" and (closes is None or closes <= now):
        raise SendRefused(
            "window_closed",
            "The 24-hour customer service window is closed: the customer has not written in the"
            " last 24 hours. Send an approved template instead.",
        )
    content = dict(request.content or {})
    _check_content(request, content)
    inbox = await session.get(Inbox, conversation.inbox_id)
    assert inbox is not None
    identity = await session.scalar(
        select(ContactIdentity)
        .where(
            ContactIdentity.contact_id == conversation.contact_id,
            ContactIdentity.channel_type == inbox.channel_type,
        )
        .order_by(ContactIdentity.id.desc())
    )
    if identity is None:
        raise SendRefused("no_address", "This contact has no address on this inbox's channel.")
    reply_to_external_id = None
    if request.reply_to_message_id is not None:
        original = await session.get(Message, request.reply_to_message_id)
        if original is None or original.conversation_id != conversation.id:
            raise SendRefused(
                "reply_to_unknown", "reply_to_message_id is not in this conversation."
            )
        reply_to_external_id = original.external_id
    if request.type == "reaction":
        target = await session.get(Message, content.get("message_id"))
        if target is None or target.conversation_id != conversation.id or not target.external_id:
            raise SendRefused(
                "reaction_target_unknown", "The reacted message is not in this conversation."
            )
        content = {
            "message_id": target.external_id,
            "emoji": content.get("emoji", ""),
            "target_id": target.id,
        }
    if request.media_link:
        content["media_link"] = request.media_link
    message = Message(
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        direction="out",
        type=request.type,
        text=request.text,
        content=content,
        reply_to_external_id=reply_to_external_id,
        sender_user_id=actor.user_id,
        status="queued",
        media_attempts=0,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    session.add(
        OutboxItem(
            message_id=message.id,
            inbox_id=conversation.inbox_id,
            recipient=identity.address,
            state="pending",
            attempts=0,
            next_attempt_at=now,
        )
    )
    if idempotency_key is not None:
        try:
            async with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        scope=scope,
                        key=idempotency_key,
                        request_hash=fingerprint,
                        message_id=message.id,
                    )
                )
        except IntegrityError as exc:
            # A concurrent request with the same key committed first.
            raise SendRefused(
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is being processed; retry it.",
                status=409,
            ) from exc
    conversation.last_activity_at = now
    if request.type != "reaction":
        conversation.last_message_preview = preview_of(request.type, request.text)
    await session.flush()
    await record(
        session,
        actor,
        "message.send",
        "message",
        message.id,
        {"conversation_id": conversation.id, "type": request.type},
    )
    queue_event(
        session,
        "message.created",
        {
            "message_id": message.id,
            "conversation_id": conversation.id,
            "inbox_id": conversation.inbox_id,
        },
    )
    queue_event(session, "outbox.queued", {"inbox_id": conversation.inbox_id})
    return message, True


def _check_content(request: SendRequest, content: dict[str, Any]) -> None:
    if request.type == "text" and not (request.text and request.text.strip()):
        raise SendRefused("text_required", "A text message needs a non-empty 'text'.")
    if request.type == "text" and request.text and len(request.text) > 4096:
        raise SendRefused("text_too_long", "WhatsApp text messages hold at most 4,096 characters.")
    if (
        request.type in ("image", "audio", "video", "document", "sticker")
        and not request.media_link
    ):
        raise SendRefused("media_required", f"A {request.type} message needs 'media_link'.")
    if request.type == "template" and not (
        isinstance(content.get("name"), str) and isinstance(content.get("language"), str)
    ):
        raise SendRefused(
            "template_required", "A template message needs content.name and content.language."
        )
    if request.type == "reaction" and not isinstance(content.get("message_id"), int):
        raise SendRefused(
            "reaction_target_required", "A reaction needs content.message_id (a wadesk message id)."
        )
    if request.type == "location" and not all(
        isinstance(content.get(k), int | float) for k in ("latitude", "longitude")
    ):
        raise SendRefused("location_required", "A location needs content.latitude and longitude.")
    if request.type == "interactive" and not isinstance(content.get("interactive"), dict):
        raise SendRefused(
            "interactive_required", "An interactive message needs content.interactive."
        )


async def do_retry_message(session: AsyncSession, *, actor: Actor, message: Message) -> None:
    """Queue a failed outbound message again (a person decided to try once more)."""
    if message.direction != "out" or message.status != "failed":
        raise SendRefused("not_failed", "Only failed outbound messages can be retried.", status=409)
    item = await session.scalar(select(OutboxItem).where(OutboxItem.message_id == message.id))
    if item is None:
        raise SendRefused("not_failed", "This message has nothing to retry.", status=409)
    item.state, item.next_attempt_at, item.attempts, item.last_error = "pending", utcnow(), 0, None
    message.status, message.error_code, message.error_title, message.failed_at = (
        "queued",
        None,
        None,
        None,
    )
    await record(session, actor, "message.retry", "message", message.id)
    queue_message_updated(session, message)


async def do_update_conversation(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation: Conversation,
    status: str | None = None,
    assignee_id: int | Keep | None = Keep.KEEP,
    priority: str | None = None,
    snoozed_until: datetime | None = None,
    labels: list[str] | None = None,
) -> Conversation:
    changes: dict[str, Any] = {}
    if status is not None and status != conversation.status:
        if status not in CONVERSATION_STATUSES:
            raise SendRefused(
                "invalid_status", f"status must be one of {', '.join(CONVERSATION_STATUSES)}"
            )
        if status == "snoozed" and snoozed_until is None:
            raise SendRefused("snooze_needs_time", "Snoozing needs snoozed_until.")
        if conversation.status == "resolved" and status != "resolved":
            active = await session.scalar(
                select(Conversation.id).where(
                    Conversation.inbox_id == conversation.inbox_id,
                    Conversation.contact_id == conversation.contact_id,
                    Conversation.status != "resolved",
                )
            )
            if active is not None:
                raise SendRefused(
                    "conversation_active_elsewhere",
                    f"This contact already has an open conversation ({active}) in this inbox.",
                    status=409,
                )
        changes["status"] = (conversation.status, status)
        conversation.status = status
        conversation.resolved_at = utcnow() if status == "resolved" else None
        conversation.snoozed_until = snoozed_until if status == "snoozed" else None
    if not isinstance(assignee_id, Keep) and assignee_id != conversation.assignee_id:
        changes["assignee_id"] = (conversation.assignee_id, assignee_id)
        conversation.assignee_id = assignee_id
    if priority is not None and priority != conversation.priority:
        if priority not in PRIORITIES:
            raise SendRefused(
                "invalid_priority", f"priority must be one of {', '.join(PRIORITIES)}"
            )
        changes["priority"] = (conversation.priority, priority)
        conversation.priority = priority
    if labels is not None:
        before = await _label_names(session, conversation.id)
        if sorted(set(labels)) != before:
            await _set_labels(session, conversation.id, labels)
            changes["labels"] = (before, sorted(set(labels)))
    if changes:
        conversation.updated_at = utcnow()
        await record(
            session,
            actor,
            "conversation.update",
            "conversation",
            conversation.id,
            {k: {"before": b, "after": a} for k, (b, a) in changes.items()},
        )
        queue_event(
            session,
            "conversation.updated",
            {
                "conversation_id": conversation.id,
                "inbox_id": conversation.inbox_id,
                "changes": sorted(changes),
            },
        )
    return conversation


async def _label_names(session: AsyncSession, conversation_id: int) -> list[str]:
    rows = await session.scalars(
        select(Label.name)
        .join(ConversationLabel, ConversationLabel.label_id == Label.id)
        .where(ConversationLabel.conversation_id == conversation_id)
        .order_by(Label.name)
    )
    return list(rows.all())


async def _set_labels(session: AsyncSession, conversation_id: int, names: list[str]) -> None:
    wanted = sorted({name.strip() for name in names if name.strip()})
    for name in wanted:
        if len(name) > 60:
            raise SendRefused("label_too_long", "Labels hold at most 60 characters.")
    existing = {
        label.name: label
        for label in (await session.scalars(select(Label).where(Label.name.in_(wanted)))).all()
    }
    for name in wanted:
        if name not in existing:
            label = Label(name=name)
            session.add(label)
            existing[name] = label
    await session.flush()
    await session.execute(
        delete(ConversationLabel).where(ConversationLabel.conversation_id == conversation_id)
    )
    for name in wanted:
        session.add(ConversationLabel(conversation_id=conversation_id, label_id=existing[name].id))
    await session.flush()
