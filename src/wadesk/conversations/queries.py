"""Reads of conversations and messages, always limited to what the principal may see."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.accounts.models import User
from wadesk.contacts.models import Contact
from wadesk.contacts.phone import digits
from wadesk.conversations.models import (
    Conversation,
    ConversationLabel,
    Label,
    Mention,
    Message,
)
from wadesk.conversations.schemas import ConversationOut, LabelOut, MentionOut


def visible_conversations(principal: Principal) -> Select[tuple[Conversation]]:
    return select(Conversation).where(principal.inbox_filter(Conversation.inbox_id))


async def get_conversation(
    session: AsyncSession, principal: Principal, conversation_id: int, *, for_update: bool = False
) -> Conversation | None:
    query = visible_conversations(principal).where(Conversation.id == conversation_id)
    if for_update and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    conversation: Conversation | None = await session.scalar(query)
    return conversation


FOLDERS = ("mine", "unassigned", "all")
MIN_TEXT_SEARCH = 3  # characters: shorter searches match contact names and phones only
SEARCH_MESSAGES = 2_000  # the most recent matching messages a text search looks at


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(q: str) -> ColumnElement[bool] | None:
    """Conversations whose contact's name or phone, or one of whose messages, matches ``q``.

    Message text is matched from 3 characters on, in the 2,000 most recent matching messages
    (PostgreSQL: the trigram GIN index ``ix_messages_text_trgm`` serves rare words; SQLite
    scans)."""
    term = q.replace("\x00", "").strip()
    if not term:
        return None
    like = _like(term)
    contact_match = [Contact.name.ilike(like, escape="\\")]
    number = digits(term)
    if len(number) >= 4:
        contact_match.append(Contact.phone_key.like(f"%{number}%"))
    # One IN over a UNION of ids (not an OR of two IN): each side is an index scan on
    # PostgreSQL, and the outer query stays a plain filtered, ordered scan.
    matches = select(Conversation.id).where(
        Conversation.contact_id.in_(select(Contact.id).where(or_(*contact_match)))
    )
    if len(term) >= MIN_TEXT_SEARCH:
        # The most recent matching messages only: a common word matches a quarter of all
        # messages, and newest-first lets PostgreSQL walk the primary key backwards and stop;
        # a rare one is found through the trigram index. Both stay fast.
        recent = (
            select(Message.conversation_id)
            .where(Message.text.ilike(like, escape="\\"))
            .order_by(Message.id.desc())
            .limit(SEARCH_MESSAGES)
            .subquery()
        )
        return Conversation.id.in_(union(matches, select(recent.c.conversation_id)))
    return Conversation.id.in_(matches)


async def list_conversations(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    inbox_id: int | None = None,
    assignee: str | None = None,
    label: str | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
    folder: str | None = None,
    priority: str | None = None,
    q: str | None = None,
) -> list[Conversation]:
    """Newest activity first, keyset-paginated by ``after`` = (last_activity_at, id).

    ``folder``: "mine" (assigned to the principal), "unassigned", "all" (default). The other
    filters combine with it (AND)."""
    query = visible_conversations(principal)
    if folder == "mine":
        query = query.where(Conversation.assignee_id == principal.user_id)
    elif folder == "unassigned":
        query = query.where(Conversation.assignee_id.is_(None))
    if status:
        query = query.where(Conversation.status == status)
    if priority:
        query = query.where(Conversation.priority == priority)
    if inbox_id is not None:
        query = query.where(Conversation.inbox_id == inbox_id)
    if assignee == "me":
        query = query.where(Conversation.assignee_id == principal.user_id)
    elif assignee == "none":
        query = query.where(Conversation.assignee_id.is_(None))
    elif assignee is not None:
        query = query.where(Conversation.assignee_id == int(assignee))
    if label:
        query = query.where(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id)
                .join(Label, Label.id == ConversationLabel.label_id)
                .where(func.lower(Label.name) == label.strip().lower())
            )
        )
    if q:
        condition = search_condition(q)
        if condition is not None:
            query = query.where(condition)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < last_id),
            )
        )
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(
        limit
    )
    return list((await session.scalars(query)).all())


async def folder_counts(session: AsyncSession, principal: Principal) -> dict[str, int]:
    """OPEN conversations the principal may see, per folder, and how many of them have unread
    customer messages: keys ``mine``, ``unassigned``, ``all`` and ``mine_unread``,
    ``unassigned_unread``, ``all_unread``. One query."""

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    mine = Conversation.assignee_id == principal.user_id
    unassigned = Conversation.assignee_id.is_(None)
    unread = Conversation.unread_count > 0
    row = (
        await session.execute(
            select(
                count_if(mine),
                count_if(unassigned),
                func.count(),
                count_if(and_(mine, unread)),
                count_if(and_(unassigned, unread)),
                count_if(unread),
            ).where(principal.inbox_filter(Conversation.inbox_id), Conversation.status == "open")
        )
    ).one()
    keys = ("mine", "unassigned", "all", "mine_unread", "unassigned_unread", "all_unread")
    return {key: int(value or 0) for key, value in zip(keys, row, strict=True)}


async def conversations_out(
    session: AsyncSession, conversations: list[Conversation], window_hours: int
) -> list[ConversationOut]:
    ids = [c.id for c in conversations]
    labels: dict[int, list[LabelOut]] = {cid: [] for cid in ids}
    names: dict[int, str | None] = {}
    if ids:
        rows = await session.execute(
            select(ConversationLabel.conversation_id, Label.id, Label.name, Label.color)
            .join(Label, Label.id == ConversationLabel.label_id)
            .where(ConversationLabel.conversation_id.in_(ids))
            .order_by(Label.name)
        )
        for cid, label_id, name, color in rows.tuples():
            labels[cid].append(LabelOut(id=label_id, name=name, color=color))
        contact_ids = sorted({c.contact_id for c in conversations})
        rows2 = await session.execute(
            select(Contact.id, Contact.name).where(Contact.id.in_(contact_ids))
        )
        names = {int(i): n for i, n in rows2.tuples()}
    return [
        ConversationOut(
            id=c.id,
            inbox_id=c.inbox_id,
            contact_id=c.contact_id,
            contact_name=names.get(c.contact_id),
            status=c.status,
            priority=c.priority,
            assignee_id=c.assignee_id,
            labels=[label.name for label in labels[c.id]],
            label_details=labels[c.id],
            source=c.source,
            snoozed_until=c.snoozed_until,
            last_customer_message_at=c.last_customer_message_at,
            window_closes_at=(
                c.last_customer_message_at + timedelta(hours=window_hours)
                if c.last_customer_message_at
                else None
            ),
            last_activity_at=c.last_activity_at,
            last_message_preview=c.last_message_preview,
            unread_count=c.unread_count,
            created_at=c.created_at,
            resolved_at=c.resolved_at,
        )
        for c in conversations
    ]


async def list_messages(
    session: AsyncSession, conversation_id: int, *, before_id: int | None, limit: int
) -> list[Message]:
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    query = query.order_by(Message.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def get_visible_message(
    session: AsyncSession, principal: Principal, message_id: int
) -> Message | None:
    message: Message | None = await session.scalar(
        select(Message).where(Message.id == message_id, principal.inbox_filter(Message.inbox_id))
    )
    return message


async def list_labels(session: AsyncSession) -> list[Label]:
    """Every label (labels are shared by all inboxes), by name."""
    return list((await session.scalars(select(Label).order_by(func.lower(Label.name)))).all())


async def get_label(session: AsyncSession, label_id: int) -> Label | None:
    return await session.get(Label, label_id)


def _mention_is_read() -> ColumnElement[int]:
    return case((Mention.read_at.is_(None), 0), else_=1)


async def list_mentions(
    session: AsyncSession,
    principal: Principal,
    *,
    unread_only: bool = False,
    after: tuple[int, int] | None = None,
    limit: int = 50,
    mention_id: int | None = None,
) -> list[MentionOut]:
    """The principal's own mentions in conversations they may still see: unread first, then
    newest first. ``after`` = (0 unread | 1 read, id) of the last item of the previous page."""
    is_read = _mention_is_read()
    query = (
        select(Mention, Message.text, User.name)
        .join(Conversation, Conversation.id == Mention.conversation_id)
        .join(Message, Message.id == Mention.message_id)
        .outerjoin(User, User.id == Mention.author_user_id)
        .where(Mention.user_id == principal.user_id)
        .where(principal.inbox_filter(Conversation.inbox_id))
    )
    if unread_only:
        query = query.where(Mention.read_at.is_(None))
    if mention_id is not None:
        query = query.where(Mention.id == mention_id)
    if after is not None:
        flag, last_id = after
        query = query.where(or_(is_read > flag, and_(is_read == flag, Mention.id < last_id)))
    rows = await session.execute(query.order_by(is_read, Mention.id.desc()).limit(limit))
    return [
        MentionOut(
            id=mention.id,
            conversation_id=mention.conversation_id,
            message_id=mention.message_id,
            author_user_id=mention.author_user_id,
            author_name=author,
            excerpt=(text or "")[:200],
            created_at=mention.created_at,
            read_at=mention.read_at,
        )
        for mention, text, author in rows.tuples()
    ]


async def conversations_of_contact(
    session: AsyncSession, principal: Principal, contact_id: int, *, limit: int = 50
) -> list[Conversation]:
    """A contact's conversations the principal may see, newest first."""
    query = (
        visible_conversations(principal)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.created_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
