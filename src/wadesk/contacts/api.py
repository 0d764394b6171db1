"""/api/v1/contacts"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.audit.actions import record_view
from wadesk.contacts.actions import ContactConflict, do_create_contact, do_update_contact
from wadesk.contacts.models import Contact
from wadesk.contacts.phone import InvalidPhone
from wadesk.contacts.queries import get_contact, identities_of, list_contacts
from wadesk.contacts.schemas import (
    ContactConversationOut,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    IdentityOut,
)
from wadesk.conversations.queries import conversations_of_contact
from wadesk.deps import Reader, SessionDep, Writer
from wadesk.errors import ApiError
from wadesk.pagination import Page, decode_id_cursor, encode_cursor

router = APIRouter(prefix="/contacts", tags=["contacts"])


async def _out(session: AsyncSession, contacts: list[Contact]) -> list[ContactOut]:
    identities = await identities_of(session, [c.id for c in contacts])
    return [
        ContactOut.model_validate(c).model_copy(
            update={"identities": [IdentityOut.model_validate(i) for i in identities[c.id]]}
        )
        for c in contacts
    ]


@router.get("", response_model=Page[ContactOut])
async def list_(
    session: SessionDep,
    principal: Reader,
    q: Annotated[
        str | None, Query(max_length=200, description="Name, email or phone digits")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ContactOut]:
    after = decode_id_cursor(cursor) if cursor else None
    contacts = await list_contacts(session, principal, q=q, after_id=after, limit=limit + 1)
    more = len(contacts) > limit
    contacts = contacts[:limit]
    return Page(
        items=await _out(session, contacts),
        next_cursor=encode_cursor(contacts[-1].id) if more and contacts else None,
    )


@router.post("", response_model=ContactOut, status_code=201)
async def create(session: SessionDep, principal: Writer, body: ContactCreate) -> ContactOut:
    try:
        contact = await do_create_contact(
            session,
            actor=principal.actor,
            name=body.name,
            phone=body.phone,
            email=body.email,
            attributes=body.attributes,
        )
    except InvalidPhone as exc:
        raise ApiError(422, "invalid_phone", str(exc)) from exc
    except ContactConflict as exc:
        raise await _conflict(session, principal, exc) from exc
    return (await _out(session, [contact]))[0]


async def _conflict(session: SessionDep, principal: Principal, exc: ContactConflict) -> ApiError:
    """409 naming the other contact only to someone who may see it: the id of a customer of
    another inbox is none of the caller's business."""
    if await get_contact(session, principal, exc.existing_id) is not None:
        return ApiError(409, "contact_exists", f"{exc} (id {exc.existing_id})")
    return ApiError(409, "contact_exists", f"{exc}, in an inbox you cannot see")


@router.get("/{contact_id}", response_model=ContactOut)
async def get(session: SessionDep, principal: Reader, contact_id: int) -> ContactOut:
    contact = await get_contact(session, principal, contact_id)
    if contact is None:
        raise ApiError(404, "not_found", "No such contact.")
    await record_view(session, principal.actor, "contact", contact.id)
    return (await _out(session, [contact]))[0]


@router.patch("/{contact_id}", response_model=ContactOut)
async def update(
    session: SessionDep, principal: Writer, contact_id: int, body: ContactUpdate
) -> ContactOut:
    contact = await get_contact(session, principal, contact_id)
    if contact is None:
        raise ApiError(404, "not_found", "No such contact.")
    changes = body.model_dump(exclude_unset=True)
    patch = changes.pop("attributes", None)
    remove: list[str] = []
    if patch is not None:
        # JSON merge patch (RFC 7396) one level deep: null removes a key, any other value
        # sets or replaces it, keys not named are left alone.
        remove = [key for key, value in patch.items() if value is None]
        changes["attributes"] = {k: v for k, v in patch.items() if v is not None}
    try:
        await do_update_contact(
            session,
            actor=principal.actor,
            contact=contact,
            changes=changes,
            remove_attributes=remove,
        )
    except InvalidPhone as exc:
        raise ApiError(422, "invalid_phone", str(exc)) from exc
    except ContactConflict as exc:
        raise await _conflict(session, principal, exc) from exc
    return (await _out(session, [contact]))[0]


@router.get("/{contact_id}/conversations", response_model=Page[ContactConversationOut])
async def conversations(
    session: SessionDep,
    principal: Reader,
    contact_id: int,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ContactConversationOut]:
    """The contact's conversations in the inboxes the caller may see, newest first."""
    contact = await get_contact(session, principal, contact_id)
    if contact is None:
        raise ApiError(404, "not_found", "No such contact.")
    rows = await conversations_of_contact(session, principal, contact.id, limit=limit)
    return Page(items=[ContactConversationOut.model_validate(c) for c in rows])
