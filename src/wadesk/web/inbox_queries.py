"""Reads for the agent inbox pages, always limited by ``principal.inbox_filter``.

The conversation list (folders, status tabs, filters, search, keyset cursor), folder counts,
one thread's messages with what it needs to render them (replies, reactions, senders), the
contact panel. Models are read only; every change goes through the domain actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.accounts.models import InboxMember, User
from wadesk.automation.queries import FlowPosition, flow_position
from wadesk.contacts.models import Contact, ContactIdentity
from wadesk.conversations.actions import _resolve_handles, mentioned_handles, users_who_see_inbox
from wadesk.conversations.models import (
    Conversation,
    ConversationLabel,
    IdempotencyKey,
    Label,
    Message,
)
from wadesk.inboxes.models import Inbox

FOLDERS = ("mine", "unassigned", "all")
STATUSES = ("open", "pending", "snoozed", "resolved")
PRIORITIES = ("urgent", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class ListFilters:
    folder: str = "mine"
    status: str = "open"
    inbox_id: int | None = None
    label: str | None = None
    priority: str | None = None
    q: str | None = None

    def query_string(self, **overrides: Any) -> str:
        from urllib.parse import urlencode

        values = {
            "folder": self.folder,
            "status": self.status,
            "inbox": self.inbox_id or "",
            "label": self.label or "",
            "priority": self.priority or "",
            "q": self.q or "",
        }
        values.update(overrides)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(slots=True)
class Row:
    conversation: Conversation
    contact_name: str | None
    phone: str | None
    inbox_name: str
    labels: list[Label] = field(default_factory=list)
    assignee_name: str | None = None


def _filtered(principal: Principal, filters: ListFilters) -> Select[tuple[Conversation]]:
    query = select(Conversation).where(principal.inbox_filter(Conversation.inbox_id))
    query = query.where(Conversation.status == filters.status)
    if filters.folder == "mine":
        query = query.where(Conversation.assignee_id == principal.user_id)
    elif filters.folder == "unassigned":
        query = query.where(Conversation.assignee_id.is_(None))
    if filters.inbox_id is not None:
        query = query.where(Conversation.inbox_id == filters.inbox_id)
    if filters.priority:
        query = query.where(Conversation.priority == filters.priority)
    if filters.label:
        query = query.where(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id)
                .join(Label, Label.id == ConversationLabel.label_id)
                .where(Label.name == filters.label)
            )
        )
    if filters.q:
        needle = filters.q.strip()
        like = f"%{_escape_like(needle.lower())}%"
        digits = "".join(ch for ch in needle if ch.isdigit())
        contact_match = [func.lower(Contact.name).like(like, escape="\\")]
        if len(digits) >= 3:
            contact_match.append(Contact.phone_key.like(f"%{digits}%"))
        query = query.where(
            or_(
                Conversation.contact_id.in_(select(Contact.id).where(or_(*contact_match))),
                Conversation.id.in_(
                    select(Message.conversation_id).where(
                        principal.inbox_filter(Message.inbox_id),
                        func.lower(Message.text).like(like, escape="\\"),
                    )
                ),
            )
        )
    return query


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_rows(
    session: AsyncSession,
    principal: Principal,
    filters: ListFilters,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Row]:
    query = _filtered(principal, filters)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < last_id),
            )
        )
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    conversations = list((await session.scalars(query.limit(limit))).all())
    return await rows_for(session, conversations)


async def row_if_matching(
    session: AsyncSession, principal: Principal, filters: ListFilters, conversation_id: int
) -> Row | None:
    query = _filtered(principal, filters).where(Conversation.id == conversation_id)
    conversation = await session.scalar(query)
    if conversation is None:
        return None
    return (await rows_for(session, [conversation]))[0]


async def rows_for(session: AsyncSession, conversations: list[Conversation]) -> list[Row]:
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    contacts = {
        c.id: c
        for c in (
            await session.scalars(
                select(Contact).where(Contact.id.in_({c.contact_id for c in conversations}))
            )
        ).all()
    }
    inboxes = dict(
        (
            await session.execute(
                select(Inbox.id, Inbox.name).where(
                    Inbox.id.in_({c.inbox_id for c in conversations})
                )
            )
        )
        .tuples()
        .all()
    )
    assignee_ids = {c.assignee_id for c in conversations if c.assignee_id}
    users = (
        dict(
            (await session.execute(select(User.id, User.name).where(User.id.in_(assignee_ids))))
            .tuples()
            .all()
        )
        if assignee_ids
        else {}
    )
    labels: dict[int, list[Label]] = {i: [] for i in ids}
    for cid, label in (
        await session.execute(
            select(ConversationLabel.conversation_id, Label)
            .join(Label, Label.id == ConversationLabel.label_id)
            .where(ConversationLabel.conversation_id.in_(ids))
            .order_by(Label.name)
        )
    ).tuples():
        labels[cid].append(label)
    rows = []
    for c in conversations:
        contact = contacts.get(c.contact_id)
        rows.append(
            Row(
                conversation=c,
                contact_name=contact.name if contact else None,
                phone=contact.phone_e164 if contact else None,
                inbox_name=inboxes.get(c.inbox_id, ""),
                labels=labels[c.id],
                assignee_name=users.get(c.assignee_id) if c.assignee_id else None,
            )
        )
    return rows


async def folder_counts(
    session: AsyncSession, principal: Principal, filters: ListFilters
) -> dict[str, dict[str, int]]:
    """Per folder: conversations in the current status/filters, and how many have unread."""
    counts: dict[str, dict[str, int]] = {}
    for folder in FOLDERS:
        query = _filtered(principal, _replace(filters, folder=folder)).subquery()
        total, unread = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((query.c.unread_count > 0, 1), else_=0)), 0),
                ).select_from(query)
            )
        ).one()
        counts[folder] = {"total": int(total), "unread": int(unread)}
    return counts


def _replace(filters: ListFilters, **changes: Any) -> ListFilters:
    from dataclasses import replace

    return replace(filters, **changes)


async def filter_choices(
    session: AsyncSession, principal: Principal
) -> tuple[list[Inbox], list[Label]]:
    inboxes = list(
        (
            await session.scalars(
                select(Inbox).where(principal.inbox_filter(Inbox.id)).order_by(Inbox.name)
            )
        ).all()
    )
    labels = list((await session.scalars(select(Label).order_by(Label.name))).all())
    return inboxes, labels


async def visible_conversation(
    session: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation | None:
    conversation: Conversation | None = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, principal.inbox_filter(Conversation.inbox_id)
        )
    )
    return conversation


@dataclass(slots=True)
class Thread:
    messages: list[Message]
    oob: list[Message]
    older_cursor: int | None
    by_external: dict[str, Message]
    reactions: dict[str, list[Message]]
    senders: dict[int, str]
    client_keys: dict[int, str]


async def thread_messages(
    session: AsyncSession,
    conversation: Conversation,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    only_ids: list[int] | None = None,
    limit: int = 40,
    scope: str | None = None,
) -> Thread:
    """A page of messages (oldest first) and what renders them: quoted originals, reactions
    grouped on their target, the agents' names, the sender's Idempotency-Keys (``scope``: the
    agent's own; a queued browser bubble is replaced by the stored one carrying its key)."""
    query = select(Message).where(Message.conversation_id == conversation.id)
    if only_ids is not None:
        query = query.where(Message.id.in_(only_ids[:200]))
        limit = max(limit, len(only_ids[:200]))
    if before_id is not None:
        query = query.where(Message.id < before_id)
    if after_id is not None:
        query = query.where(Message.id > after_id).order_by(Message.id).limit(500)
        page = list((await session.scalars(query)).all())
        more = False
    else:
        page = list(
            (await session.scalars(query.order_by(Message.id.desc()).limit(limit + 1))).all()
        )
        more = len(page) > limit
        page = list(reversed(page[:limit]))
    visible = [m for m in page if m.type != "reaction"]
    ids = [m.id for m in page]
    by_external: dict[str, Message] = {m.external_id: m for m in page if m.external_id}
    # A new reaction (live, after_id) re-renders its target in place (an out-of-band swap).
    oob: list[Message] = []
    if after_id is not None:
        targets = {
            str((m.content or {}).get("message_id") or "") for m in page if m.type == "reaction"
        } - set(by_external)
        if targets:
            oob = list(
                (
                    await session.scalars(
                        select(Message).where(
                            Message.conversation_id == conversation.id,
                            Message.external_id.in_(targets),
                        )
                    )
                ).all()
            )
            by_external.update({m.external_id: m for m in oob if m.external_id})
    # Quoted originals may sit outside this page: fetch them by external id.
    wanted = {m.reply_to_external_id for m in [*page, *oob] if m.reply_to_external_id}
    missing = wanted - set(by_external)
    if missing:
        for original in (
            await session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation.id,
                    Message.external_id.in_(missing),
                )
            )
        ).all():
            if original.external_id:
                by_external[original.external_id] = original
    externals = {m.external_id for m in [*visible, *oob] if m.external_id}
    reactions: dict[str, list[Message]] = {}
    if externals:
        found = (
            await session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id, Message.type == "reaction")
                .order_by(Message.id)
            )
        ).all()
        latest: dict[tuple[str, str, int | None], Message] = {}
        for reaction in found:
            target = str((reaction.content or {}).get("message_id") or "")
            if target in externals:
                latest[(target, reaction.direction, reaction.sender_user_id)] = reaction
        for (target, _, _), reaction in latest.items():
            if (reaction.content or {}).get("emoji"):
                reactions.setdefault(target, []).append(reaction)
    sender_ids = {m.sender_user_id for m in page if m.sender_user_id}
    senders = (
        dict(
            (await session.execute(select(User.id, User.name).where(User.id.in_(sender_ids))))
            .tuples()
            .all()
        )
        if sender_ids
        else {}
    )
    client_keys: dict[int, str] = {}
    if scope and ids:
        client_keys = {
            int(mid): key
            for mid, key in (
                await session.execute(
                    select(IdempotencyKey.message_id, IdempotencyKey.key).where(
                        IdempotencyKey.scope == scope, IdempotencyKey.message_id.in_(ids)
                    )
                )
            ).tuples()
        }
    return Thread(
        messages=visible,
        oob=oob,
        older_cursor=page[0].id if more and page else None,
        by_external=by_external,
        reactions=reactions,
        senders=senders,
        client_keys=client_keys,
    )


@dataclass(slots=True)
class ContactPanel:
    contact: Contact | None
    identities: list[ContactIdentity]
    earlier: list[Conversation]
    flow: FlowPosition | None = None  # the guided flow the customer is in


async def contact_panel(
    session: AsyncSession, principal: Principal, conversation: Conversation
) -> ContactPanel:
    contact = await session.get(Contact, conversation.contact_id)
    identities = list(
        (
            await session.scalars(
                select(ContactIdentity)
                .where(ContactIdentity.contact_id == conversation.contact_id)
                .order_by(ContactIdentity.id)
            )
        ).all()
    )
    earlier = list(
        (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.contact_id == conversation.contact_id,
                    Conversation.id != conversation.id,
                    principal.inbox_filter(Conversation.inbox_id),
                )
                .order_by(Conversation.last_activity_at.desc())
                .limit(10)
            )
        ).all()
    )
    return ContactPanel(
        contact=contact,
        identities=identities,
        earlier=earlier,
        flow=await flow_position(session, conversation.id),
    )


async def assignable_people(session: AsyncSession, inbox_id: int) -> list[User]:
    """Active people who may be assigned a conversation of this inbox (members and admins)."""
    members = select(InboxMember.user_id).where(InboxMember.inbox_id == inbox_id)
    return list(
        (
            await session.scalars(
                select(User)
                .where(User.is_active, or_(User.role == "admin", User.id.in_(members)))
                .order_by(User.name)
            )
        ).all()
    )


@dataclass(frozen=True, slots=True)
class Mentionable:
    id: int
    name: str
    handle: str


async def mentionable_people(
    session: AsyncSession, inbox_id: int, *, query: str, exclude_user_id: int | None, limit: int
) -> list[Mentionable]:
    """People a private note of this inbox may mention, with the handle ``do_add_note`` resolves.

    The handle is the e-mail's local part when no one else who sees the inbox shares it, else
    the whole address (see ``conversations.actions._resolve_handles``); each is checked by
    resolving it the way a note will, so what the list offers is what gets mentioned.
    """
    people = await users_who_see_inbox(session, inbox_id)
    wanted = query.strip().lower().lstrip("@")
    found: list[Mentionable] = []
    for user in sorted(people, key=lambda u: (u.name.lower(), u.id)):
        if user.id == exclude_user_id:
            continue  # mentioning oneself notifies nobody
        email = user.email.lower()
        words = [w for w in user.name.lower().split() if w]
        if wanted and not (
            email.startswith(wanted)
            or user.name.lower().startswith(wanted)
            or any(w.startswith(wanted) for w in words)
        ):
            continue
        for handle in (email.split("@", 1)[0], email):
            if _resolve_handles(mentioned_handles(f"@{handle}"), people) == {user.id}:
                found.append(Mentionable(id=user.id, name=user.name, handle=handle))
                break
        if len(found) >= limit:
            break
    return found


async def may_be_assigned(session: AsyncSession, user_id: int, inbox_id: int) -> bool:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    return user.role == "admin" or await session.get(InboxMember, (inbox_id, user_id)) is not None


@dataclass(slots=True)
class TemplateChoice:
    id: int
    name: str
    language: str
    category: str
    header: str
    body: str
    header_params: int
    body_params: int


async def approved_templates(session: AsyncSession, inbox_id: int) -> list[TemplateChoice]:
    """The inbox's approved WhatsApp templates (as last synced) and their parameter counts."""
    try:
        from wadesk.automation.models import MessageTemplate
        from wadesk.automation.templates import parameter_counts
    except ImportError:  # pragma: no cover - the automation domain is part of wadesk
        return []
    rows = (
        await session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.inbox_id == inbox_id, MessageTemplate.status == "APPROVED")
            .order_by(MessageTemplate.name, MessageTemplate.language)
            .limit(200)
        )
    ).all()
    choices = []
    for row in rows:
        components = row.components or []
        texts = {
            str(c.get("type", "")).upper(): str(c.get("text") or "")
            for c in components
            if isinstance(c, dict)
        }
        counts = parameter_counts(components)
        choices.append(
            TemplateChoice(
                id=row.id,
                name=row.name,
                language=row.language,
                category=row.category,
                header=texts.get("HEADER", ""),
                body=texts.get("BODY", ""),
                header_params=counts.get("header", 0),
                body_params=counts.get("body", 0),
            )
        )
    return choices
