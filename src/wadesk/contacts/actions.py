"""State changes of contacts. Bulk-safe and race-safe: unique keys decide, not check-then-insert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.bulk import bulk_insert
from wadesk.contacts.models import Contact, ContactIdentity
from wadesk.contacts.phone import e164_from_wa_id, phone_key, to_e164
from wadesk.db import queue_event, utcnow
from wadesk.pgarrays import among

# Every new customer's ingest transaction runs these; built once (docs/benchmarks.md).
_WHATSAPP_IDENTITIES = select(
    ContactIdentity.identity_key, ContactIdentity.contact_id, ContactIdentity.address
).where(ContactIdentity.channel_type == "whatsapp", among(ContactIdentity.identity_key, "keys"))
_CONTACTS_BY_KEY = select(Contact.phone_key, Contact.id).where(among(Contact.phone_key, "keys"))
_CONTACTS = cast(Table, Contact.__table__)
_IDENTITIES = cast(Table, ContactIdentity.__table__)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value


async def resolve_whatsapp_senders(
    session: AsyncSession, senders: dict[str, str | None], created: set[int] | None = None
) -> dict[str, int]:
    """Contact ids for WhatsApp senders (wa_id -> profile name), creating what is missing;
    the ids of the contacts created here are added to ``created`` when given.

    A wa_id matches an existing identity by its canonical key, then a contact saved with the
    same number in another form (Brazil's ninth digit, Mexico's 521); only then is a contact
    created. Concurrent callers converge on the same rows through the unique keys.
    """
    if not senders:
        return {}
    dialect = session.bind.dialect.name
    keys = {wa_id: phone_key(wa_id) for wa_id in senders}
    found = await _identities_by_key(session, set(keys.values()))
    missing = sorted({key for key in keys.values() if key not in found})
    if missing:
        rows = await session.execute(_CONTACTS_BY_KEY, {"keys": missing})
        contact_by_key: dict[str, int] = {str(k): i for k, i in rows.tuples()}
        to_create = [key for key in missing if key not in contact_by_key]
        if to_create:
            now = utcnow()
            name_by_key = {keys[w]: senders[w] for w in senders}
            new_rows: list[dict[str, Any]] = [
                {
                    "name": _clip(name_by_key.get(key), 200),
                    "phone_key": key,
                    "phone_e164": e164_from_wa_id(key),
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for key in to_create
            ]
            inserted = await session.execute(
                *bulk_insert(
                    dialect,
                    _CONTACTS,
                    new_rows,
                    skip_conflicts=("phone_key",),
                    returning=("phone_key", "id"),
                )
            )
            made_here = {str(k): int(i) for k, i in inserted.tuples()}
            contact_by_key.update(made_here)
            raced = [key for key in to_create if key not in made_here]  # another transaction's
            if raced:
                rows = await session.execute(_CONTACTS_BY_KEY, {"keys": raced})
                contact_by_key.update({str(k): i for k, i in rows.tuples()})
            for key in to_create:
                if key in made_here:
                    queue_event(session, "contact.created", {"contact_id": made_here[key]})
            if created is not None:
                created.update(contact_by_key[key] for key in to_create)
        address_by_key = {keys[w]: w for w in senders}
        now = utcnow()
        inserted = await session.execute(
            *bulk_insert(
                dialect,
                _IDENTITIES,
                [
                    {
                        "contact_id": contact_by_key[key],
                        "channel_type": "whatsapp",
                        "identity_key": key,
                        "address": address_by_key[key],
                        "profile_name": _clip(senders[address_by_key[key]], 200),
                        "created_at": now,
                    }
                    for key in missing
                ],
                skip_conflicts=("channel_type", "identity_key"),
                returning=("identity_key", "contact_id", "address"),
            )
        )
        found.update({str(k): (int(c), str(a)) for k, c, a in inserted.tuples()})
        found.update(
            await _identities_by_key(session, {key for key in missing if key not in found})
        )
    # Replies go to the address the customer last wrote from.
    for wa_id, key in keys.items():
        _contact_id, address = found[key]
        if address != wa_id:
            await session.execute(
                update(ContactIdentity)
                .where(
                    ContactIdentity.channel_type == "whatsapp", ContactIdentity.identity_key == key
                )
                .values(address=wa_id)
            )
    return {wa_id: found[key][0] for wa_id, key in keys.items()}


async def _identities_by_key(session: AsyncSession, keys: set[str]) -> dict[str, tuple[int, str]]:
    if not keys:
        return {}
    rows = await session.execute(_WHATSAPP_IDENTITIES, {"keys": sorted(keys)})
    return {str(key): (int(cid), str(addr)) for key, cid, addr in rows.tuples()}


class ContactConflict(ValueError):
    """The phone number belongs to another contact (one number, one contact, always)."""

    def __init__(self, message: str, existing_id: int) -> None:
        super().__init__(message)
        self.existing_id = existing_id


async def do_create_contact(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str | None,
    phone: str | None,
    email: str | None,
    attributes: dict[str, Any],
) -> Contact:
    e164 = to_e164(phone) if phone else None
    key = phone_key(e164) if e164 else None
    if key is not None:
        existing = await session.scalar(select(Contact.id).where(Contact.phone_key == key))
        if existing is not None:
            raise ContactConflict("a contact with this phone number already exists", existing)
    contact = Contact(
        name=name, phone_e164=e164, phone_key=key, email=email, attributes=attributes or {}
    )
    session.add(contact)
    await session.flush()
    if key is not None:
        session.add(
            ContactIdentity(
                contact_id=contact.id,
                channel_type="whatsapp",
                identity_key=key,
                address=key,
            )
        )
    await record(session, actor, "contact.create", "contact", contact.id, {"name": name})
    queue_event(session, "contact.created", {"contact_id": contact.id})
    return contact


async def do_update_contact(
    session: AsyncSession,
    *,
    actor: Actor,
    contact: Contact,
    changes: dict[str, Any],
    remove_attributes: Sequence[str] = (),
    inbox_id: int | None = None,
) -> Contact:
    """Change a contact's fields; ``changes["attributes"]`` is merged into the attributes.

    ``remove_attributes`` names keys to delete (a key both removed and set ends up set): an
    explicit list, so that a caller may still store a ``null`` value (the API's PATCH turns its
    merge patch's ``null`` values into this list). The audit
    row keeps the touched fields before and after the change. ``inbox_id``: the inbox the change
    was made from (the inbox's contact panel), so that inbox's agents get the live event; a
    contact belongs to no inbox, and an event without one reaches only people who see them all.
    """
    changes = dict(changes)
    before = {key: getattr(contact, key) for key in changes if key != "phone"}
    if remove_attributes:
        before["attributes"] = contact.attributes
    if "phone" in changes:
        phone = changes.pop("phone")
        e164 = to_e164(phone) if phone else None
        key = phone_key(e164) if e164 else None
        if key is not None and key != contact.phone_key:
            other = await session.scalar(select(Contact.id).where(Contact.phone_key == key))
            if other is not None:
                raise ContactConflict("another contact has this phone number", other)
        before["phone"] = contact.phone_e164
        contact.phone_e164, contact.phone_key = e164, key
    merged = changes.pop("attributes", None)
    if merged is not None or remove_attributes:
        gone = set(remove_attributes)
        kept = {k: v for k, v in (contact.attributes or {}).items() if k not in gone}
        # A new dict (not an in-place change), so the JSON column sees the update.
        contact.attributes = {**kept, **(merged or {})}
    for field, value in changes.items():
        setattr(contact, field, value)
    contact.updated_at = utcnow()
    after = {key: contact.phone_e164 if key == "phone" else getattr(contact, key) for key in before}
    await record(
        session,
        actor,
        "contact.update",
        "contact",
        contact.id,
        {"before": _jsonable(before), "after": _jsonable(after)},
    )
    event: dict[str, Any] = {"contact_id": contact.id}
    if inbox_id is not None:
        event["inbox_id"] = inbox_id
    queue_event(session, "contact.updated", event)
    return contact


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | None | dict) else str(v)
        for k, v in values.items()
    }
