"""Reads of contacts, always limited to what the principal may see."""

from __future__ import annotations

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.contacts.models import Contact, ContactIdentity
from wadesk.contacts.phone import digits
from wadesk.conversations.models import Conversation


def visible_contacts(principal: Principal) -> Select[tuple[Contact]]:
    query = select(Contact)
    if principal.inbox_ids is not None:
        query = query.where(
            exists().where(
                Conversation.contact_id == Contact.id,
                principal.inbox_filter(Conversation.inbox_id),
            )
        )
    return query


async def get_contact(
    session: AsyncSession, principal: Principal, contact_id: int
) -> Contact | None:
    contact: Contact | None = await session.scalar(
        visible_contacts(principal).where(Contact.id == contact_id)
    )
    return contact


async def list_contacts(
    session: AsyncSession, principal: Principal, *, q: str | None, after_id: int | None, limit: int
) -> list[Contact]:
    query = visible_contacts(principal)
    q = (q or "").replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if q:
        like = f"%{q.strip().lower()}%"
        conditions = [Contact.name.ilike(like), Contact.email.ilike(like)]
        number = digits(q)
        if len(number) >= 4:
            conditions.append(Contact.phone_key.like(f"%{number}%"))
        query = query.where(or_(*conditions))
    if after_id is not None:
        query = query.where(Contact.id < after_id)
    return list((await session.scalars(query.order_by(Contact.id.desc()).limit(limit))).all())


async def identities_of(
    session: AsyncSession, contact_ids: list[int]
) -> dict[int, list[ContactIdentity]]:
    result: dict[int, list[ContactIdentity]] = {cid: [] for cid in contact_ids}
    if contact_ids:
        rows = await session.scalars(
            select(ContactIdentity)
            .where(ContactIdentity.contact_id.in_(contact_ids))
            .order_by(ContactIdentity.id)
        )
        for identity in rows.all():
            result[identity.contact_id].append(identity)
    return result
