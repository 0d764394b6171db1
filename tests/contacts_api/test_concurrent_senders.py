"""Two transactions meet the same new customer at once (two processes' ingest rounds): both
resolve to one contact and one identity, and only the transaction that created the contact
announces it (wadesk/contacts/actions.py: the inserts return what they made; the loser reads
the winner's rows)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from wadesk.contacts.actions import resolve_whatsapp_senders
from wadesk.contacts.models import Contact, ContactIdentity


def _created(session: Any) -> list[int]:
    events = session.sync_session.info.get("wadesk_events", [])
    return [payload["contact_id"] for kind, payload in events if kind == "contact.created"]


async def test_two_transactions_resolve_one_new_customer_to_one_contact(live):
    db = live.runtime.db
    wa_id = "5511977770001"
    async with db.session() as first:
        first_ids = await resolve_whatsapp_senders(first, {wa_id: "Ana"})
        first_announced = _created(first)

        async def second() -> tuple[dict[str, int], list[int]]:
            # Its inserts wait for the first transaction (PostgreSQL: the unique keys' row
            # locks; SQLite: the one connection), then find its rows.
            async with db.session() as session:
                ids = await resolve_whatsapp_senders(session, {wa_id: "Ana B."})
                return ids, _created(session)

        racing = asyncio.create_task(second())
        await asyncio.sleep(0.2)  # the second transaction is now waiting on the first
        assert not racing.done()
    second_ids, second_announced = await racing

    assert first_ids == second_ids == {wa_id: first_ids[wa_id]}
    assert first_announced == [first_ids[wa_id]]
    assert second_announced == []
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert await session.scalar(select(func.count()).select_from(ContactIdentity)) == 1
