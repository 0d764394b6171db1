"""State changes of conversations and outbound messages.

Sending inserts the message and its outbox row in one transaction: nothing is sent before
it is committed, and a worker that dies leaves the row to be claimed again.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.models import InboxMember, User
from wadesk.audit.actions import Actor, record, record_many
from wadesk.contacts.models import ContactIdentity
from wadesk.conversations.events import queue_message_updated
from wadesk.conversations.hooks import after_conversation_change
from wadesk.conversations.inbound import preview_of
from wadesk.conversations.models import (
    CONVERSATION_STATUSES,
    PRIORITIES,
    Conversation,
    ConversationLabel,
    IdempotencyKey,
    Label,
    Mention,
    Message,
)
from wadesk.db import queue_event, utcnow
from wadesk.inboxes.models import Inbox
from wadesk.media.models import Upload
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
    upload_id: int | None = None  # a file from POST /api/v1/uploads (media/uploads.py)


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
            "upload_id": request.upload_id,
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
    now = utcnow()
    _check_window(conversation, request, service_window_hours, now)
    content = dict(request.content or {})
    _check_content(request, content)
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
    upload = await _upload_for(session, actor, request)
    if upload is not None:
        content["upload_id"] = upload.id
        if request.type == "document":
            content.setdefault("filename", upload.filename)
    queued = _Queued(conversation, request, content, reply_to_external_id, upload)
    (result,) = await _queue(session, actor, [queued], now)
    if isinstance(result, SendRefused):
        raise result
    message = result
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
    return message, True


async def do_send_messages(
    session: AsyncSession,
    *,
    actor: Actor,
    sends: Sequence[tuple[Conversation, SendRequest]],
    service_window_hours: int,
) -> list[Message | SendRefused]:
    """Queue several messages at once, each checked as ``do_send_message`` checks it: a
    refused one gets its ``SendRefused`` in the result (in order), the others are queued.
    The automation worker queues a whole round of replies this way: a few statements for
    the round instead of a handful per reply. Only requests that need no lookup of their
    own: no reply-to, reaction or upload (those go through ``do_send_message``)."""
    now = utcnow()
    results: list[Message | SendRefused | None] = []
    queued: list[_Queued] = []
    for conversation, request in sends:
        if request.reply_to_message_id or request.upload_id or request.type == "reaction":
            raise ValueError("a reply-to, upload or reaction goes through do_send_message")
        content = dict(request.content or {})
        try:
            _check_window(conversation, request, service_window_hours, now)
            _check_content(request, content)
        except SendRefused as exc:
            results.append(exc)
            continue
        if request.media_link:
            content["media_link"] = request.media_link
        results.append(None)
        queued.append(_Queued(conversation, request, content))
    done = iter(await _queue(session, actor, queued, now))
    return [result if result is not None else next(done) for result in results]


def _check_window(
    conversation: Conversation, request: SendRequest, service_window_hours: int, now: datetime
) -> None:
    if request.type not in SENDABLE_TYPES:
        raise SendRefused("unsupported_type", f"Cannot send messages of type {request.type!r}.")
    closes = window_closes_at(conversation, service_window_hours)
    if request.type != "template" and (closes is None or closes <= now):
        raise SendRefused(
            "window_closed",
            "The 24-hour customer service window is closed: the customer has not written in the"
            " last 24 hours. Send an approved template instead.",
        )


@dataclass(slots=True)
class _Queued:
    """A checked send, its content resolved, ready to become a message and an outbox row."""

    conversation: Conversation
    request: SendRequest
    content: dict[str, Any]
    reply_to_external_id: str | None = None
    upload: Upload | None = None


async def _queue(
    session: AsyncSession, actor: Actor, items: list[_Queued], now: datetime
) -> list[Message | SendRefused]:
    """Messages and outbox rows for checked sends, with one read of the recipients'
    addresses, one insert of each kind and one audit write for all of them."""
    if not items:
        return []
    channels = dict(
        (
            await session.execute(
                select(Inbox.id, Inbox.channel_type).where(
                    Inbox.id.in_(sorted({q.conversation.inbox_id for q in items}))
                )
            )
        )
        .tuples()
        .all()
    )
    addresses: dict[tuple[int, str], str] = {}
    identity = ContactIdentity
    contact_ids = sorted({q.conversation.contact_id for q in items})
    for contact_id, channel_type, address in (
        await session.execute(
            select(identity.contact_id, identity.channel_type, identity.address)
            .where(identity.contact_id.in_(contact_ids))
            .order_by(identity.id.desc())
        )
    ).tuples():
        addresses.setdefault((contact_id, channel_type), address)  # the newest identity
    results: list[Message | SendRefused] = []
    outgoing: list[tuple[_Queued, Message, str]] = []
    for item in items:
        conversation, request = item.conversation, item.request
        to = addresses.get((conversation.contact_id, channels[conversation.inbox_id]))
        if to is None:
            results.append(
                SendRefused("no_address", "This contact has no address on this inbox's channel.")
            )
            continue
        message = Message(
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            direction="out",
            type=request.type,
            text=request.text,
            content=item.content,
            reply_to_external_id=item.reply_to_external_id,
            sender_user_id=actor.user_id,
            status="queued",
            media_attempts=0,
            created_at=now,
        )
        if (upload := item.upload) is not None:
            # Shown in the thread through the media route; the worker uploads it to WhatsApp.
            message.media_key, message.media_mime = upload.media_key, upload.mime_type
            message.media_filename, message.media_size = upload.filename, upload.size
            message.media_sha256, message.media_status = upload.sha256, "stored"
        results.append(message)
        outgoing.append((item, message, to))
    if not outgoing:
        return results
    session.add_all([message for _, message, _ in outgoing])
    await session.flush()
    for item, message, address in outgoing:
        conversation = item.conversation
        session.add(
            OutboxItem(
                message_id=message.id,
                inbox_id=conversation.inbox_id,
                recipient=address,
                state="pending",
                attempts=0,
                next_attempt_at=now,
            )
        )
        conversation.last_activity_at = now
        if item.request.type != "reaction":
            conversation.last_message_preview = preview_of(item.request.type, item.request.text)
    await session.flush()
    await record_many(
        session,
        actor,
        [
            (
                "message.send",
                "message",
                message.id,
                {"conversation_id": item.conversation.id, "type": item.request.type},
            )
            for item, message, _ in outgoing
        ],
    )
    for item, message, _ in outgoing:
        queue_event(
            session,
            "message.created",
            {
                "message_id": message.id,
                "conversation_id": item.conversation.id,
                "inbox_id": item.conversation.inbox_id,
            },
        )
    for inbox_id in sorted({item.conversation.inbox_id for item, _, _ in outgoing}):
        queue_event(session, "outbox.queued", {"inbox_id": inbox_id})
    return results


def _check_content(request: SendRequest, content: dict[str, Any]) -> None:
    if request.type == "text" and not (request.text and request.text.strip()):
        raise SendRefused("text_required", "A text message needs a non-empty 'text'.")
    if request.type == "text" and request.text and len(request.text) > 4096:
        raise SendRefused("text_too_long", "WhatsApp text messages hold at most 4,096 characters.")
    media_types = ("image", "audio", "video", "document", "sticker")
    if request.type in media_types and not (request.media_link or request.upload_id):
        raise SendRefused(
            "media_required", f"A {request.type} message needs 'upload_id' or 'media_link'."
        )
    if request.upload_id is not None and request.type not in media_types:
        raise SendRefused("upload_not_media", f"A {request.type} message takes no upload_id.")
    if request.upload_id is not None and request.media_link:
        raise SendRefused("media_twice", "Give either 'upload_id' or 'media_link', not both.")
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


async def _upload_for(session: AsyncSession, actor: Actor, request: SendRequest) -> Upload | None:
    """The sender's own upload, of a kind WhatsApp takes as this message type."""
    if request.upload_id is None:
        return None
    upload = await session.get(Upload, request.upload_id)
    if upload is None or upload.user_id is None or upload.user_id != actor.user_id:
        raise SendRefused("upload_unknown", f"No upload {request.upload_id} of yours.")
    if upload.kind != request.type:
        raise SendRefused(
            "upload_kind_mismatch",
            f"Upload {upload.id} is {upload.mime_type} ({upload.kind}); it cannot be sent as"
            f" {request.type}.",
        )
    return upload


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
        if sorted({n.strip() for n in labels if n.strip()}) != before:
            await _set_labels(session, conversation.id, labels)
            after = await _label_names(session, conversation.id)
            if after != before:
                changes["labels"] = (before, after)
    if changes:
        conversation.updated_at = utcnow()
        await after_conversation_change(session, conversation, changes)
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
    # Names match existing labels whatever their case ("VIP" applies the label "vip").
    existing = {
        label.name.lower(): label
        for label in (
            await session.scalars(
                select(Label).where(func.lower(Label.name).in_([n.lower() for n in wanted]))
            )
        ).all()
    }
    for name in wanted:
        if name.lower() not in existing:
            label = Label(name=name, color=DEFAULT_LABEL_COLOR)
            session.add(label)
            existing[name.lower()] = label
    await session.flush()
    await session.execute(
        delete(ConversationLabel).where(ConversationLabel.conversation_id == conversation_id)
    )
    for label_id in sorted({existing[name.lower()].id for name in wanted}):
        session.add(ConversationLabel(conversation_id=conversation_id, label_id=label_id))
    await session.flush()


# --- Private notes and @mentions ---------------------------------------------------------

NOTE_MAX_CHARS = 10_000
MAX_MENTIONS = 20
# "@maria" (an e-mail's local part) or "@maria@example.com", not inside an e-mail address.
MENTION_RE = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")


async def users_who_see_inbox(session: AsyncSession, inbox_id: int) -> list[User]:
    """Active people who may see an inbox's conversations: its members and every admin."""
    rows = await session.scalars(
        select(User)
        .where(
            User.is_active.is_(True),
            or_(
                User.role == "admin",
                User.id.in_(select(InboxMember.user_id).where(InboxMember.inbox_id == inbox_id)),
            ),
        )
        .order_by(User.id)
    )
    return list(rows.all())


def mentioned_handles(text: str) -> list[str]:
    """The ``@handle``s of a note, lower-case, each once, in order (trailing dots dropped)."""
    found: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        found[match.group(1).rstrip(".").lower()] = None
    return [h for h in found if h]


def _resolve_handles(handles: list[str], people: list[User]) -> set[int]:
    """Handles naming exactly one person (full e-mail, or an unambiguous local part)."""
    by_email = {u.email.lower(): u.id for u in people}
    by_local: dict[str, list[int]] = {}
    for user in people:
        by_local.setdefault(user.email.lower().split("@", 1)[0], []).append(user.id)
    ids: set[int] = set()
    for handle in handles:
        if handle in by_email:
            ids.add(by_email[handle])
        elif len(by_local.get(handle, [])) == 1:
            ids.add(by_local[handle][0])
    return ids


async def do_add_note(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation: Conversation,
    text: str,
    mentions: Sequence[int] = (),
) -> Message:
    """A private note in the thread: never queued, never sent, not customer activity.

    ``mentions`` are user ids (each must be able to see the conversation's inbox, else
    :class:`SendRefused` 422); ``@email`` and unambiguous ``@name`` (an e-mail's local part)
    in the text mention too. Each mentioned person gets a :class:`Mention` row and a
    ``mention.created`` event."""
    body = (text or "").replace("\x00", "").strip()
    if not body:
        raise SendRefused("text_required", "A note needs a non-empty 'text'.")
    if len(body) > NOTE_MAX_CHARS:
        raise SendRefused("text_too_long", f"Notes hold at most {NOTE_MAX_CHARS:,} characters.")
    wanted = list(dict.fromkeys(mentions))
    if len(wanted) > MAX_MENTIONS:
        raise SendRefused("too_many_mentions", f"Mention at most {MAX_MENTIONS} people.")
    people = await users_who_see_inbox(session, conversation.inbox_id)
    allowed_ids = {u.id for u in people}
    refused = [uid for uid in wanted if uid not in allowed_ids]
    if refused:
        raise SendRefused(
            "invalid_mention",
            f"Cannot mention user(s) {', '.join(map(str, refused))}: no active person with that"
            " id may see this conversation's inbox.",
        )
    mentioned = set(wanted) | _resolve_handles(mentioned_handles(body), people)
    mentioned.discard(actor.user_id or 0)  # mentioning oneself notifies nobody
    now = utcnow()
    message = Message(
        inbox_id=conversation.inbox_id,
        conversation_id=conversation.id,
        direction="out",
        type="note",
        text=body,
        content={"mentions": sorted(mentioned)} if mentioned else {},
        sender_user_id=actor.user_id,
        status="note",
        media_attempts=0,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    for user_id in sorted(mentioned):
        session.add(
            Mention(
                conversation_id=conversation.id,
                message_id=message.id,
                user_id=user_id,
                author_user_id=actor.user_id,
                created_at=now,
            )
        )
    # A note is the team's activity: the list moves it up; the preview stays the customer's.
    conversation.last_activity_at = now
    await session.flush()
    await record(
        session,
        actor,
        "note.create",
        "message",
        message.id,
        {"conversation_id": conversation.id, "mentions": sorted(mentioned)},
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
    for user_id in sorted(mentioned):
        queue_event(
            session,
            "mention.created",
            {
                "conversation_id": conversation.id,
                "message_id": message.id,
                "user_id": user_id,
                "inbox_id": conversation.inbox_id,
            },
        )
    return message


async def do_mark_mentions_read(
    session: AsyncSession, *, actor: Actor, user_id: int, mention_ids: Sequence[int] | None
) -> int:
    """Mark a person's own mentions read (all of them when ``mention_ids`` is None).
    Returns how many changed. Not audited: like read markers, it is nobody else's business."""
    query = update(Mention).where(Mention.user_id == user_id, Mention.read_at.is_(None))
    if mention_ids is not None:
        query = query.where(Mention.id.in_(list(mention_ids)))
    result = await session.execute(query.values(read_at=utcnow()))
    changed = int(getattr(result, "rowcount", 0) or 0)
    if changed:
        queue_event(session, "mention.read", {"user_id": user_id, "count": changed})
    return changed


async def do_mark_read(session: AsyncSession, *, actor: Actor, conversation: Conversation) -> bool:
    """An agent read the conversation: its unread counter goes to zero.

    Not audited on purpose: opening a thread happens hundreds of times a day per person, the
    counter is shared UI state rather than a decision anyone is accountable for, and who
    looked at a conversation is already in the trail (``conversation.view``). Writing a
    hash-chained audit row here would serialise every thread open on the audit lock.
    Returns whether anything changed (no event when it was already read)."""
    if conversation.unread_count == 0:
        return False
    conversation.unread_count = 0
    await session.flush()
    queue_event(
        session,
        "conversation.updated",
        {
            "conversation_id": conversation.id,
            "inbox_id": conversation.inbox_id,
            "changes": ["unread_count"],
        },
    )
    return True


# --- Labels --------------------------------------------------------------------------------

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_LABEL_COLOR = "#6b7280"


def _clean_label(name: str | None, color: str | None) -> tuple[str | None, str | None]:
    if name is not None:
        name = name.replace("\x00", "").strip()
        if not 1 <= len(name) <= 60:
            raise SendRefused("invalid_label_name", "A label name has 1 to 60 characters.")
    if color is not None:
        if not COLOR_RE.match(color):
            raise SendRefused("invalid_color", "A colour is written #rrggbb (e.g. #22c55e).")
        color = color.lower()
    return name, color


async def _name_taken(session: AsyncSession, name: str, except_id: int | None = None) -> bool:
    """Taken in any letter case. Compared here, not with SQL's lower(): SQLite's folds ASCII
    letters only ("Äpfel" and "äpfel"). Labels are a short, hand-kept list."""
    wanted = name.casefold()
    rows = (await session.execute(select(Label.id, Label.name))).tuples()
    return any(n.casefold() == wanted and i != except_id for i, n in rows)


async def do_create_label(
    session: AsyncSession, *, actor: Actor, name: str, color: str | None = None
) -> Label:
    clean_name, clean_color = _clean_label(name, color)
    assert clean_name is not None
    if await _name_taken(session, clean_name):
        raise SendRefused("label_exists", f"A label named {clean_name!r} exists.", status=409)
    label = Label(name=clean_name, color=clean_color or DEFAULT_LABEL_COLOR)
    try:
        async with session.begin_nested():
            session.add(label)
    except IntegrityError as exc:
        raise SendRefused("label_exists", f"A label named {clean_name!r} exists.", 409) from exc
    await record(
        session,
        actor,
        "label.create",
        "label",
        label.id,
        {"name": label.name, "color": label.color},
    )
    queue_event(session, "label.changed", {"label_id": label.id})
    return label


async def do_update_label(
    session: AsyncSession,
    *,
    actor: Actor,
    label: Label,
    name: str | None = None,
    color: str | None = None,
) -> Label:
    clean_name, clean_color = _clean_label(name, color)
    changes: dict[str, dict[str, str]] = {}
    if clean_name is not None and clean_name != label.name:
        if await _name_taken(session, clean_name, except_id=label.id):
            raise SendRefused("label_exists", f"A label named {clean_name!r} exists.", 409)
        changes["name"] = {"before": label.name, "after": clean_name}
        label.name = clean_name
    if clean_color is not None and clean_color != label.color:
        changes["color"] = {"before": label.color, "after": clean_color}
        label.color = clean_color
    if changes:
        try:
            async with session.begin_nested():  # a concurrent rename to the same name
                await session.flush()
        except IntegrityError as exc:
            raise SendRefused("label_exists", f"A label named {clean_name!r} exists.", 409) from exc
        await record(session, actor, "label.update", "label", label.id, changes)
        queue_event(session, "label.changed", {"label_id": label.id})
    return label


async def do_delete_label(session: AsyncSession, *, actor: Actor, label: Label) -> None:
    """Delete a label; it leaves every conversation that had it."""
    used = await session.scalar(
        select(func.count())
        .select_from(ConversationLabel)
        .where(ConversationLabel.label_id == label.id)
    )
    await session.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label.id))
    await session.delete(label)
    await session.flush()
    await record(
        session,
        actor,
        "label.delete",
        "label",
        label.id,
        {"name": label.name, "conversations": int(used or 0)},
    )
    queue_event(session, "label.changed", {"label_id": label.id, "deleted": True})
