"""The order-status story, end to end: the simulator's customer writes, the webhook stores it,
the automation worker calls the demo orders API and the reply reaches the customer's phone."""

from __future__ import annotations

from sqlalchemy import select

from tests.automation.conftest import (
    conversation_messages,
    customer_says,
    demo_inbox,
    received,
    settle_jobs,
    wait_received,
)
from tests.helpers import auth, create_user
from wadesk.automation.models import AutomationRule, Integration
from wadesk.conversations.models import Conversation, ConversationLabel, Label


async def test_order_number_in_the_question_is_answered_with_live_data(live):
    await demo_inbox(live)
    await customer_says(live, "Hi, where is my order 12345?")
    texts = await wait_received(live, 1)
    assert "12345" in texts[0] and "on its way" in texts[0]
    assert "DHL Express" in texts[0] and "tomorrow before 12:00" in texts[0]
    await settle_jobs(live)
    messages = await conversation_messages(live)
    bot = [m for m in messages if m.direction == "out" and m.type == "text"]
    assert bot[0].content["automation"]["kind"] == "rule" and bot[0].sender_user_id is None
    async with live.runtime.db.session() as session:
        rule = await session.scalar(
            select(AutomationRule).where(AutomationRule.name == "Order status (demo)")
        )
        assert (rule.matches, rule.answered, rule.handed_off) == (1, 1, 0)
        labels = (
            await session.scalars(
                select(Label.name).join(ConversationLabel, ConversationLabel.label_id == Label.id)
            )
        ).all()
        assert labels == ["orders"]


async def test_order_status_alone_asks_for_the_number_then_answers(live):
    await demo_inbox(live)
    await customer_says(live, "Order status")
    texts = await wait_received(live, 1)
    assert texts == ["Sure Ana — what is your order number?"]
    await settle_jobs(live)
    await customer_says(live, "it's 23456")
    texts = await wait_received(live, 2)
    assert "Order 23456 is delivered" in texts[1] and "M. Rossi" in texts[1]
    async with live.runtime.db.session() as session:
        rule = await session.scalar(
            select(AutomationRule).where(AutomationRule.name == "Order status (demo)")
        )
        # One match (the question), answered once the number came.
        assert (rule.matches, rule.answered, rule.handed_off) == (1, 1, 0)


async def test_accented_other_language_keywords_match(live):
    await demo_inbox(live)
    await customer_says(live, "Où est ma COMMANDE 34567 ?")
    texts = await wait_received(live, 1)
    assert "34567 is being packed" in texts[0]


async def test_unknown_order_gets_a_polite_answer_and_a_person(live):
    await demo_inbox(live)
    await customer_says(live, "where is my order 99999")
    texts = await wait_received(live, 1)
    assert texts[0].startswith("I could not find an order 99999")
    await settle_jobs(live)
    messages = await conversation_messages(live)
    notes = [m for m in messages if m.type == "note"]
    assert len(notes) == 1 and "nothing found" in notes[0].text and "99999" in notes[0].text
    async with live.runtime.db.session() as session:
        rule = await session.scalar(
            select(AutomationRule).where(AutomationRule.name == "Order status (demo)")
        )
        assert (rule.matches, rule.answered, rule.handed_off) == (1, 0, 1)
        conversation = await session.scalar(select(Conversation))
        assert conversation.status == "open"


async def test_failing_integration_hands_over_and_keeps_the_message(live):
    await demo_inbox(live)
    async with live.runtime.db.session() as session:
        integration = await session.scalar(select(Integration))
        integration.url = "http://127.0.0.1:9/orders/{{match.order}}"  # nothing listens
        integration.timeout_seconds = 0.5
    live.runtime.automation.on_event("automation.rules_changed", {"inbox_id": None})
    await customer_says(live, "tracking for 12345 please")
    texts = await wait_received(live, 1)
    assert texts[0].startswith("Our order system does not answer right now")
    await settle_jobs(live)
    messages = await conversation_messages(live)
    assert [m.text for m in messages if m.direction == "in"] == ["tracking for 12345 please"]
    notes = [m for m in messages if m.type == "note"]
    assert len(notes) == 1 and "integration failed" in notes[0].text


async def test_the_integration_secret_is_encrypted_at_rest_and_never_shown(live):
    await demo_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    listed = (await live.client.get("/api/v1/automation/integrations", headers=auth(token))).json()
    assert listed["items"][0]["has_secret"] is True and "secret" not in listed["items"][0]
    from sqlalchemy import text

    from wadesk.automation.demo import demo_key

    async with live.runtime.db.session() as session:
        raw = await session.scalar(text("SELECT secret FROM automation_integrations"))
    assert raw and demo_key() not in raw


async def test_a_person_who_took_over_is_not_interrupted(live):
    inbox = await demo_inbox(live)
    _, token = await create_user(live, email="agent@example.com", inbox_ids=(inbox["id"],))
    await customer_says(live, "hello")
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
    response = await live.client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"type": "text", "text": "Hi Ana, Marta here. How can I help?"},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    await wait_received(live, 1)
    await customer_says(live, "where is my order 12345")
    await settle_jobs(live)
    assert received(live) == ["Hi Ana, Marta here. How can I help?"]
