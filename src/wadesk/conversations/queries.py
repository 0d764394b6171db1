"""Reads of conversations and messages, always limited to what the principal may see."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, ConversationLabel, Label, Message
from wadesk.conversations.schemas import ConversationOut


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


async def list_conversations(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    inbox_id: int | None,
    assignee: str | None,
    label: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Conversation]:
    query = visible_conversations(principal)
    if status:
        query = query.where(Conversation.status == status)
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
                .where(Label.name == label)
            )
        )
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


async def conversations_out(
    session: AsyncSession, conversations: list[Conversation], window_hours: int
) -> list[ConversationOut]:
    ids = [c.id for c in conversations]
    labels: dict[int, list[str]] = {cid: [] for cid in ids}
    names: dict[int, str | None] = {}
    if ids:
        rows = await session.execute(
            select(ConversationLabel.conversation_id, Label.name)
            .join(Label, Label.id == ConversationLabel.label_id)
            .where(ConversationLabel.conversation_id.in_(ids))
            .order_by(Label.name)
        )
        for cid, name in rows.tuples():
            labels[cid].append(name)
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
            labels=labels[c.id],
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
