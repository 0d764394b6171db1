"""Which link started a conversation: the reference in the text (even edited), a bare code,
Click-to-WhatsApp ad referrals, the prefilled message without its code; and the analytics."""

from __future__ import annotations

import copy
import csv
import inspect
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

import wadesk.conversations.inbound
import wadesk.ingest.processor
from tests.helpers import (
    create_inbox,
    envelope,
    post_signed,
    settle,
    text_message,
)
from tests.links.conftest import new_link
from wadesk.contacts.actions import resolve_whatsapp_senders
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Message
from wadesk.db import utcnow
from wadesk.links.attribution import attribute_new_conversations
from wadesk.links.models import LinkAttribution

CUSTOMER = "5511912345678"
AD_ID = "120226305854810726"


async def write(live: Any, inbox: dict[str, Any], *messages: dict[str, Any]) -> None:
    """Store inbound messages as the inbound path does (contact, unresolved conversation,
    message), without going through it: these tests call attribution themselves, whether or
    not the inbound path calls it too."""
    async with live.runtime.db.session() as session:
        for message in sorted(messages, key=lambda m: int(m["timestamp"])):
            contact_id = (await resolve_whatsapp_senders(session, {message["from"]: "Customer"}))[
                message["from"]
            ]
            conversation = await session.scalar(
                select(Conversation).where(
                    Conversation.inbox_id == inbox["id"],
                    Conversation.contact_id == contact_id,
                    Conversation.status != "resolved",
                )
            )
            if conversation is None:
                conversation = Conversation(
                    inbox_id=inbox["id"],
                    contact_id=contact_id,
                    status="open",
                    priority="none",
                    unread_count=0,
                    last_activity_at=utcnow(),
                )
                session.add(conversation)
                await session.flush()
            conversation.last_customer_message_at = utcnow()
            session.add(
                Message(
                    inbox_id=inbox["id"],
                    conversation_id=conversation.id,
                    direction="in",
                    type="text",
                    text=message["text"]["body"],
                    content={},
                    external_id=message["id"],
                    referral=message.get("referral"),
                    status="received",
                    media_attempts=0,
                    created_at=utcnow(),
                )
            )
            await session.flush()


async def post_webhook(live: Any, inbox: dict[str, Any], *messages: dict[str, Any]) -> None:
    response = await post_signed(live.client, inbox["webhook_url"], envelope(list(messages)))
    assert response.status_code == 200
    await settle(live)


async def inbound_items(live: Any, after_id: int = 0) -> list[tuple[Any, ...]]:
    """What the inbound path hands to attribution: its stored messages, in order."""
    async with live.runtime.db.session() as session:
        rows = await session.execute(
            select(Message.conversation_id, Conversation.contact_id, Message.text, Message.referral)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.direction == "in", Message.id > after_id)
            .order_by(Message.id)
        )
        return [tuple(row) for row in rows]


async def attribute(live: Any, inbox: dict[str, Any], items: list[tuple[Any, ...]]) -> int:
    async with live.runtime.db.session() as session:
        return await attribute_new_conversations(session, inbox["id"], items)


async def conversation_and_contact(live: Any) -> tuple[Conversation, Contact]:
    async with live.runtime.db.session() as session:
        conversation = (
            await session.scalars(select(Conversation).order_by(Conversation.id.desc()))
        ).first()
        assert conversation is not None
        contact = await session.get(Contact, conversation.contact_id)
        assert contact is not None
        return conversation, contact


@pytest.fixture
async def inbox(live):
    return await create_inbox(live)


@pytest.fixture
async def natal(live, admin, inbox):
    return await new_link(
        live,
        admin,
        phone=None,
        inbox_id=inbox["id"],
        message="Olá! Quero saber da promoção de Natal 🎄",
        ref_code="XMAS24",
        campaign="natal-2025",
        source="website header",
        slug="promo-natal",
    )


@pytest.mark.parametrize(
    "text",
    [
        "Olá! Quero saber da promoção de Natal 🎄 (ref: XMAS24)",
        "oi, mudei tudo mas deixei isso (ref: xmas24) ok?",
        "Boa tarde (REF:XMAS24)",
        "quero ref xmas24",
        "Vi no site XMAS24, tem desconto?",
        "(código: XMAS24) bom dia",
    ],
)
async def test_the_reference_is_found_even_when_the_customer_edits_the_text(
    live, inbox, natal, text
):
    await write(live, inbox, text_message(CUSTOMER, "wamid.one", text))
    assert await attribute(live, inbox, await inbound_items(live)) == 1
    conversation, contact = await conversation_and_contact(live)
    source = conversation.source
    assert source is not None
    assert source["type"] == "link" and source["link_id"] == natal["id"]
    assert source["slug"] == "promo-natal" and source["campaign"] == "natal-2025"
    assert source["matched_by"] == ("code" if text.startswith("Vi no site") else "ref")
    assert contact.first_source == source and contact.last_source == source
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(LinkAttribution))).all()
    assert [(r.link_id, r.conversation_id, r.contact_id) for r in rows] == [
        (natal["id"], conversation.id, contact.id)
    ]
    # The same messages again (a replay): nothing changes, nothing is counted twice.
    assert await attribute(live, inbox, await inbound_items(live)) == 0


async def test_the_prefilled_message_without_its_code_still_matches_one_link(
    live, admin, inbox, natal
):
    await write(
        live, inbox, text_message(CUSTOMER, "wamid.t1", "olá!  quero saber da PROMOÇÃO de natal 🎄")
    )
    assert await attribute(live, inbox, await inbound_items(live)) == 1
    conversation, _ = await conversation_and_contact(live)
    assert conversation.source is not None
    assert conversation.source["link_id"] == natal["id"]
    assert conversation.source["matched_by"] == "text"
    # Two links with the same message: the text alone proves nothing.
    await new_link(
        live,
        admin,
        phone=None,
        inbox_id=inbox["id"],
        message="Olá! Quero saber da promoção de Natal 🎄",
    )
    await write(
        live,
        inbox,
        text_message("5511955554444", "wamid.t2", "Olá! Quero saber da promoção de Natal 🎄"),
    )
    assert await attribute(live, inbox, await inbound_items(live)) == 0


async def test_an_ongoing_conversation_is_not_attributed(live, inbox, natal):
    await write(live, inbox, text_message(CUSTOMER, "wamid.a", "Oi"))
    items = await inbound_items(live)
    last = 0
    async with live.runtime.db.session() as session:
        last = int(await session.scalar(select(Message.id).order_by(Message.id.desc())) or 0)
    await write(live, inbox, text_message(CUSTOMER, "wamid.b", "(ref: XMAS24)"))
    assert await attribute(live, inbox, await inbound_items(live, after_id=last)) == 0
    # Every inbound message of the conversation together is a new conversation again.
    assert await attribute(live, inbox, items + await inbound_items(live, after_id=last)) == 1


async def test_the_first_message_that_names_a_link_decides(live, inbox, natal):
    await write(
        live,
        inbox,
        text_message(CUSTOMER, "wamid.m1", "Bom dia", ts=1_750_000_000),
        text_message(CUSTOMER, "wamid.m2", "vim pelo site (ref: XMAS24)", ts=1_750_000_001),
    )
    assert await attribute(live, inbox, await inbound_items(live)) == 1
    conversation, _ = await conversation_and_contact(live)
    assert conversation.source is not None and conversation.source["link_id"] == natal["id"]


def referral_message(ad_id: str, wamid: str, text: str) -> dict[str, Any]:
    with open("tests/fixtures/whatsapp/text_ctwa_referral.json") as fixture:
        body = json.load(fixture)
    message = copy.deepcopy(body["entry"][0]["changes"][0]["value"]["messages"][0])
    message.update(id=wamid, timestamp=str(int(utcnow().timestamp())), text={"body": text})
    message["from"] = CUSTOMER
    message["referral"]["source_id"] = ad_id
    return dict(message)


async def test_click_to_whatsapp_ads_are_attributed_by_their_referral(live, admin, inbox):
    ad_link = await new_link(
        live, admin, phone=None, inbox_id=inbox["id"], ad_source_id=AD_ID, campaign="summer-ads"
    )
    await write(live, inbox, referral_message(AD_ID, "wamid.ad1", "Can I get more info?"))
    assert await attribute(live, inbox, await inbound_items(live)) == 1
    conversation, contact = await conversation_and_contact(live)
    source = conversation.source
    assert source is not None
    assert source["type"] == "link" and source["link_id"] == ad_link["id"]
    assert source["matched_by"] == "referral" and source["campaign"] == "summer-ads"
    assert source["ad"]["source_id"] == AD_ID
    assert source["ad"]["headline"] == "Chat with us"
    assert source["ad"]["source_url"] == "https://fb.me/3cr4Wqqkv"
    async with live.runtime.db.session() as session:
        row = await session.scalar(select(LinkAttribution))
    assert row is not None and row.ad_source_id == AD_ID and row.matched_by == "referral"
    assert contact.first_source == source


async def test_an_ad_no_link_names_is_still_the_source(live, inbox):
    await write(live, inbox, referral_message("999000", "wamid.ad2", "Hi"))
    assert await attribute(live, inbox, await inbound_items(live)) == 1
    conversation, contact = await conversation_and_contact(live)
    assert conversation.source is not None
    assert (
        conversation.source["type"] == "ad" and conversation.source["ad"]["source_id"] == "999000"
    )
    assert contact.last_source == conversation.source
    async with live.runtime.db.session() as session:
        assert (await session.scalars(select(LinkAttribution))).all() == []


async def test_a_link_of_another_inbox_does_not_claim_the_conversation(live, admin, inbox):
    other = await create_inbox(live, phone_number_id="222222222", app_secret="other-secret")
    await new_link(live, admin, phone=None, inbox_id=other["id"], ref_code="OTHER1")
    await write(live, inbox, text_message(CUSTOMER, "wamid.o", "(ref: OTHER1)"))
    assert await attribute(live, inbox, await inbound_items(live)) == 0


async def test_the_contact_keeps_its_first_and_its_latest_source(live, admin, inbox, natal):
    await write(live, inbox, text_message(CUSTOMER, "wamid.f1", "(ref: XMAS24)"))
    await attribute(live, inbox, await inbound_items(live))
    first, _ = await conversation_and_contact(live)
    async with live.runtime.db.session() as session:
        await session.execute(update(Conversation).values(status="resolved", resolved_at=utcnow()))
        last = int(await session.scalar(select(Message.id).order_by(Message.id.desc())) or 0)
    ad_link = await new_link(live, admin, phone=None, inbox_id=inbox["id"], ad_source_id=AD_ID)
    await write(live, inbox, referral_message(AD_ID, "wamid.f2", "Hello again"))
    assert await attribute(live, inbox, await inbound_items(live, after_id=last)) == 1
    second, contact = await conversation_and_contact(live)
    assert second.id != first.id
    assert contact.first_source is not None and contact.first_source["link_id"] == natal["id"]
    assert contact.last_source is not None and contact.last_source["link_id"] == ad_link["id"]


async def test_messages_stored_by_the_webhook_path_are_attributed(live, admin, inbox, natal):
    """Real signed webhooks, parsed and stored by the inbound path; attribution applied to
    what it stored (a no-op once the inbound path calls attribution itself)."""
    await new_link(live, admin, phone=None, inbox_id=inbox["id"], ad_source_id=AD_ID)
    await post_webhook(
        live, inbox, text_message(CUSTOMER, "wamid.h1", "Olá!! Mudei o texto todo (ref: xmas24)")
    )
    await attribute(live, inbox, await inbound_items(live))
    conversation, contact = await conversation_and_contact(live)
    assert conversation.source is not None
    assert conversation.source["link_id"] == natal["id"]
    assert conversation.source["matched_by"] == "ref"
    assert contact.first_source == conversation.source
    with open("tests/fixtures/whatsapp/text_ctwa_referral.json") as fixture:
        body = json.load(fixture)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]["source_id"] = AD_ID
    assert (await post_signed(live.client, inbox["webhook_url"], body)).status_code == 200
    await settle(live)
    await attribute(live, inbox, await inbound_items(live))
    newest, ad_contact = await conversation_and_contact(live)
    assert newest.id != conversation.id
    assert newest.source is not None and newest.source["matched_by"] == "referral"
    assert newest.source["ad"]["ctwa_clid"].startswith("Aff-n8ZTODiE")
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(LinkAttribution).order_by(LinkAttribution.id))).all()
    assert [r.conversation_id for r in rows] == [conversation.id, newest.id]
    assert ad_contact.last_source == newest.source


WIRED = "attribute_new_conversations" in (
    inspect.getsource(wadesk.conversations.inbound) + inspect.getsource(wadesk.ingest.processor)
)


@pytest.mark.skipif(not WIRED, reason="the inbound path does not call attribution yet")
async def test_the_webhook_path_attributes_by_itself(live, admin, inbox, natal):
    ad_link = await new_link(live, admin, phone=None, inbox_id=inbox["id"], ad_source_id=AD_ID)
    await post_webhook(
        live, inbox, text_message(CUSTOMER, "wamid.w1", "Oi, mudei o texto (ref: xmas24)")
    )
    conversation, contact = await conversation_and_contact(live)
    assert conversation.source is not None and conversation.source["link_id"] == natal["id"]
    await post_webhook(live, inbox, text_message(CUSTOMER, "wamid.w2", "(ref: XMAS24) again"))
    await post_webhook(
        live, inbox, text_message(CUSTOMER, "wamid.w1", "Oi, mudei o texto (ref: xmas24)")
    )
    async with live.runtime.db.session() as session:
        assert len((await session.scalars(select(LinkAttribution))).all()) == 1
    with open("tests/fixtures/whatsapp/text_ctwa_referral.json") as fixture:
        body = json.load(fixture)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]["source_id"] = AD_ID
    await post_signed(live.client, inbox["webhook_url"], body)
    await settle(live)
    newest, _ = await conversation_and_contact(live)
    assert newest.source is not None and newest.source["link_id"] == ad_link["id"]
    assert contact.first_source is not None


async def test_analytics_per_link_and_campaign_with_csv(live, admin, inbox, natal):
    for i in range(5):
        await live.client.get("/c/promo-natal", headers={"User-Agent": f"Mozilla/5.0 v{i % 3}"})
    await live.app.state.links.clicks.flush()
    for n, customer in enumerate(("5511900000001", "5511900000002", "5511900000003")):
        await write(live, inbox, text_message(customer, f"wamid.s{n}", f"oi (ref: XMAS24) {n}"))
    assert await attribute(live, inbox, await inbound_items(live)) == 3
    async with live.runtime.db.session() as session:
        conversations = (
            await session.scalars(select(Conversation).order_by(Conversation.id))
        ).all()
        first_in = utcnow() - timedelta(minutes=10)
        # Customer wrote 10 minutes ago; the team answered after 90 s and 150 s; one waits.
        # A private note after 10 s is no answer: the customer never sees it.
        for conversation, answer in zip(conversations, (90, 150, None), strict=True):
            await session.execute(
                update(Message)
                .where(Message.conversation_id == conversation.id)
                .values(created_at=first_in)
            )
            session.add(
                Message(
                    inbox_id=inbox["id"],
                    conversation_id=conversation.id,
                    direction="out",
                    type="note",
                    text="cliente VIP",
                    content={},
                    status="note",
                    media_attempts=0,
                    created_at=first_in + timedelta(seconds=10),
                )
            )
            if answer is not None:
                session.add(
                    Message(
                        inbox_id=inbox["id"],
                        conversation_id=conversation.id,
                        direction="out",
                        type="text",
                        text="Olá!",
                        content={},
                        status="sent",
                        media_attempts=0,
                        created_at=first_in + timedelta(seconds=answer),
                    )
                )
        conversations[0].status = "resolved"
        conversations[0].resolved_at = utcnow()
    stats = (await live.client.get(f"/api/v1/links/{natal['id']}/stats", headers=admin)).json()
    assert stats["totals"] == {
        "clicks": 5,
        "uniques": 3,
        "bot_clicks": 0,
        "conversations": 3,
        "resolved": 1,
        "responded": 2,
        "first_response_avg_s": 120.0,
        "first_response_median_s": 120.0,
        "conversion_rate": 0.6,
    }
    today = utcnow().date().isoformat()
    assert len(stats["series"]) == 30 and stats["series"][-1] == {
        "day": today,
        "clicks": 5,
        "uniques": 3,
        "bot_clicks": 0,
        "conversations": 3,
        "resolved": 1,
    }
    assert all(d["clicks"] == 0 for d in stats["series"][:-1])
    exported = await live.client.get(f"/api/v1/links/{natal['id']}/stats.csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "link_id",
        "slug",
        "campaign",
        "day",
        "clicks",
        "uniques",
        "bot_clicks",
        "conversations",
        "resolved",
    ]
    assert rows[-1] == [
        str(natal["id"]),
        "promo-natal",
        "natal-2025",
        today,
        "5",
        "3",
        "0",
        "3",
        "1",
    ]
    campaigns = (await live.client.get("/api/v1/links/campaigns", headers=admin)).json()
    assert [(c["campaign"], c["links"], c["totals"]["conversations"]) for c in campaigns] == [
        ("natal-2025", 1, 3)
    ]
    detail = (
        await live.client.get(
            "/api/v1/links/campaigns/detail", params={"campaign": "natal-2025"}, headers=admin
        )
    ).json()
    assert detail["totals"]["clicks"] == 5 and detail["series"][-1]["conversations"] == 3
    per_link = await live.client.get("/api/v1/links/stats.csv", headers=admin)
    table = list(csv.DictReader(io.StringIO(per_link.content.decode("utf-8-sig"))))
    assert table[0]["slug"] == "promo-natal" and table[0]["first_response_median_s"] == "120.0"
    per_campaign = await live.client.get("/api/v1/links/campaigns.csv", headers=admin)
    assert "natal-2025" in per_campaign.content.decode("utf-8-sig")
    bad = await live.client.get(
        f"/api/v1/links/{natal['id']}/stats", params={"since": "2020-01-01"}, headers=admin
    )
    assert bad.status_code == 422


async def test_csv_cells_never_run_as_formulas(live, admin):
    await new_link(live, admin, campaign='=HYPERLINK("http://evil")', name="+cmd")
    exported = await live.client.get("/api/v1/links/stats.csv", headers=admin)
    table = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table[0]["campaign"].startswith("'=") and table[0]["name"] == "'+cmd"


async def test_supervisors_count_only_conversations_of_their_inboxes(live, admin, inbox, natal):
    from tests.helpers import auth, create_user

    await write(live, inbox, text_message(CUSTOMER, "wamid.v", "(ref: XMAS24)"))
    await attribute(live, inbox, await inbound_items(live))
    other = await create_inbox(live, phone_number_id="333333333", app_secret="s3")
    _, outsider = await create_user(
        live, email="sup@example.com", role="supervisor", inbox_ids=(other["id"],)
    )
    general = await new_link(live, admin, ref_code="GENERAL1")
    await write(live, inbox, text_message("5511977776666", "wamid.g", "(ref: GENERAL1)"))
    await attribute(live, inbox, await inbound_items(live))
    mine = await live.client.get(f"/api/v1/links/{general['id']}/stats", headers=admin)
    theirs = await live.client.get(f"/api/v1/links/{general['id']}/stats", headers=auth(outsider))
    assert mine.json()["totals"]["conversations"] == 1
    assert theirs.json()["totals"]["conversations"] == 0
