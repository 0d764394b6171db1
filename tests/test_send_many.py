"""``do_send_messages``: several sends queued at once (the automation worker's rounds), each
checked like a single send, refusals returned in place, one statement of each kind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import PHONE_NUMBER_ID, create_inbox, logged_events, settle
from wadesk.audit.actions import Actor
from wadesk.audit.models import AuditEvent
from wadesk.contacts.models import Contact
from wadesk.conversations.actions import SendRefused, SendRequest, do_send_messages
from wadesk.conversations.models import Conversation, Message
from wadesk.db import utcnow
from wadesk.outbox.models import OutboxItem
from wadesk.realtime.models import EventRecord

BOT = Actor.system("automation")
CUSTOMERS = ("5511987650001", "5511987650002", "5511987650003")


async def _conversations(live) -> list[Conversation]:
    await create_inbox(live)
    for wa_id in CUSTOMERS:
        await live.simulator.customer_sends(
            PHONE_NUMBER_ID, wa_id, "Cliente", {"type": "text", "text": "oi"}
        )
    await settle(live)
    live.runtime.outbox.stop()  # the rows stay as queued: this test reads them
    async with live.runtime.db.session() as session:
        # In the customers' order (two processing rounds may commit out of order, so the
        # conversations' ids need not follow it).
        conversations = list(
            (
                await session.scalars(
                    select(Conversation)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .order_by(Contact.phone_e164)
                )
            ).all()
        )
        # The third customer wrote two days ago: free-form replies are refused.
        conversations[2].last_customer_message_at = utcnow() - timedelta(days=2)
    return conversations


async def test_many_sends_in_order_with_refusals_in_place(live):
    first, second, closed = await _conversations(live)
    buttons = {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": []}}
    async with live.runtime.db.session() as session:
        conversations = {c.id: c for c in (await session.scalars(select(Conversation))).all()}
        results = await do_send_messages(
            session,
            actor=BOT,
            sends=[
                (conversations[first.id], SendRequest(type="text", text="one")),
                (conversations[closed.id], SendRequest(type="text", text="too late")),
                (
                    conversations[second.id],
                    SendRequest(type="interactive", text="Pick", content={"interactive": buttons}),
                ),
                (conversations[first.id], SendRequest(type="text", text="")),
                (conversations[first.id], SendRequest(type="text", text="two")),
            ],
            service_window_hours=24,
        )
        assert [r.code if isinstance(r, SendRefused) else r.text for r in results] == [
            "one",
            "window_closed",
            "Pick",
            "text_required",
            "two",
        ]
        sent = [r for r in results if isinstance(r, Message)]
        assert [m.id for m in sent] == sorted(m.id for m in sent)  # ids in the order given
        assert conversations[first.id].last_message_preview == "two"
    await logged_events(live)
    async with live.runtime.db.session() as session:
        outbox = (await session.execute(select(OutboxItem.message_id, OutboxItem.recipient))).all()
        assert sorted(outbox) == sorted(
            [(sent[0].id, CUSTOMERS[0]), (sent[1].id, CUSTOMERS[1]), (sent[2].id, CUSTOMERS[0])]
        )
        audited = (
            await session.scalars(
                select(AuditEvent.target_id).where(AuditEvent.action == "message.send")
            )
        ).all()
        assert sorted(audited) == sorted(str(m.id) for m in sent)
        created = (
            await session.scalars(
                select(EventRecord.payload).where(EventRecord.kind == "message.created")
            )
        ).all()
        assert {p["message_id"] for p in created} >= {m.id for m in sent}


async def test_lookups_of_their_own_go_through_do_send_message(live):
    first, _, _ = await _conversations(live)
    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, first.id)
        for request in (
            SendRequest(type="text", text="re", reply_to_message_id=1),
            SendRequest(type="image", upload_id=1),
            SendRequest(type="reaction", content={"message_id": 1, "emoji": "👍"}),
        ):
            with pytest.raises(ValueError, match="do_send_message"):
                await do_send_messages(
                    session, actor=BOT, sends=[(conversation, request)], service_window_hours=24
                )
        assert await do_send_messages(session, actor=BOT, sends=[], service_window_hours=24) == []
