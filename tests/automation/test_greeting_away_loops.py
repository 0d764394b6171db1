"""Greeting and away message (once per window, 24-hour window respected, business hours),
loop protection (echoes, bursts), the 'resolved' trigger and exactly-once jobs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.automation.conftest import (
    customer_says,
    demo_inbox,
    received,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import auth, create_user
from wadesk.audit.actions import Actor
from wadesk.automation.actions import do_create_rule, do_set_inbox_automation
from wadesk.automation.models import AutomationContactState, AutomationJob
from wadesk.conversations.actions import do_update_conversation
from wadesk.conversations.models import Conversation, Message
from wadesk.db import utcnow

ADMIN = Actor.system("tests")
CLOSED_ALWAYS = {"mon": [["00:00", "00:01"]]}  # open one minute a week, on Mondays


async def configure(live, inbox_id: int, **data) -> None:
    async with live.runtime.db.session() as session:
        await do_set_inbox_automation(session, actor=ADMIN, inbox_id=inbox_id, data=data)


async def test_greeting_once_then_not_again_in_the_same_window(live):
    inbox = await sim_inbox(live)
    await configure(
        live,
        inbox["id"],
        greeting_enabled=True,
        greeting_text="Welcome {{contact.first_name}}! How can we help?",
        greeting_after_days=7,
    )
    await customer_says(live, "hello")
    assert (await wait_received(live, 1)) == ["Welcome Ana! How can we help?"]
    await settle_jobs(live)
    # A new conversation the same day: no second greeting.
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        await do_update_conversation(
            session, actor=ADMIN, conversation=conversation, status="resolved"
        )
    await customer_says(live, "me again")
    await settle_jobs(live)
    assert received(live) == ["Welcome Ana! How can we help?"]


async def test_greeting_again_after_days_of_silence(live):
    inbox = await sim_inbox(live)
    await configure(
        live, inbox["id"], greeting_enabled=True, greeting_text="Hi again!", greeting_after_days=7
    )
    await customer_says(live, "hello")
    await wait_received(live, 1)
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        await do_update_conversation(
            session, actor=ADMIN, conversation=conversation, status="resolved"
        )
        for message in (await session.scalars(select(Message))).all():
            message.created_at = utcnow() - timedelta(days=10)
        state = await session.scalar(select(AutomationContactState))
        state.last_greeting_at = utcnow() - timedelta(days=10)
    await customer_says(live, "hello after a while")
    assert (await wait_received(live, 2))[1] == "Hi again!"


async def test_away_message_outside_hours_says_when_we_open_and_only_once(live):
    inbox = await sim_inbox(live)
    await configure(
        live,
        inbox["id"],
        timezone="Europe/Lisbon",
        schedule=CLOSED_ALWAYS,
        holidays=[utcnow().date().isoformat()],
        away_enabled=True,
        away_text="We are closed. We answer {{hours.next_opening}}.",
    )
    await customer_says(live, "anyone there?")
    texts = await wait_received(live, 1)
    assert texts[0].startswith("We are closed. We answer Monday") and "00:00" in texts[0]
    await settle_jobs(live)
    await customer_says(live, "hello??")
    await settle_jobs(live)
    assert len(received(live)) == 1


async def test_automated_replies_respect_the_24_hour_window(live):
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        await do_create_rule(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={"name": "Any", "conditions": {}, "actions": [{"type": "reply", "text": "hi"}]},
        )
    await customer_says(live, "first")
    await wait_received(live, 1)
    await settle_jobs(live)
    # Simulate a job that runs long after the customer wrote (e.g. after an outage).
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        message = await session.scalar(select(Message).where(Message.direction == "in"))
        session.add(
            AutomationJob(
                inbox_id=inbox["id"],
                conversation_id=conversation.id,
                message_id=message.id,
                trigger="message",
                opened=False,
            )
        )
        conversation.last_customer_message_at = utcnow() - timedelta(hours=25)
    live.runtime.automation.wake()
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        job = await session.scalar(select(AutomationJob).order_by(AutomationJob.id.desc()))
    assert job.outcome.get("refused") == ["window_closed"], job.outcome
    assert job.outcome["sent"] == 0
    assert received(live) == ["hi"]


async def test_echoes_and_reply_storms_are_not_answered(live):
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        await do_create_rule(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={
                "name": "Parrot",
                "conditions": {},
                "actions": [{"type": "reply", "text": "Thanks for your message!"}],
            },
        )
    await customer_says(live, "hello")
    await wait_received(live, 1)
    await settle_jobs(live)
    # Another bot on the customer's side repeats our own reply back: ignored.
    await customer_says(live, "Thanks for your message!")
    await settle_jobs(live)
    assert len(received(live)) == 1
    for i in range(12):
        await customer_says(live, f"bot message {i}")
    await wait_received(live, 10)
    await settle_jobs(live)
    # At most 10 automated replies per customer in 10 minutes.
    assert len(received(live)) == 10
    async with live.runtime.db.session() as session:
        skipped = [
            j.outcome.get("skipped")
            for j in (await session.scalars(select(AutomationJob))).all()
            if j.outcome and j.outcome.get("skipped")
        ]
    assert "echo of our own reply" in skipped and any("loop guard" in s for s in skipped)


async def test_resolved_trigger_and_assigned_conversations(live):
    inbox = await demo_inbox(live)
    user_id, token = await create_user(live, email="boss@example.com")
    async with live.runtime.db.session() as session:
        await do_create_rule(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={
                "name": "Bye",
                "trigger": "resolved",
                "actions": [{"type": "reply", "text": "Thanks {{contact.first_name}}, bye!"}],
                "after_handoff": True,
            },
        )
    await customer_says(live, "hello")
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
    assigned = await live.client.patch(
        f"/api/v1/conversations/{conversation.id}",
        json={"assignee_id": user_id},
        headers=auth(token),
    )
    assert assigned.status_code == 200, assigned.text
    await customer_says(live, "where is my order 12345")  # assigned: the order rule stays quiet
    await settle_jobs(live)
    assert received(live) == []
    resolved = await live.client.patch(
        f"/api/v1/conversations/{conversation.id}", json={"status": "resolved"}, headers=auth(token)
    )
    assert resolved.status_code == 200
    assert (await wait_received(live, 1)) == ["Thanks Ana, bye!"]
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        jobs = (await session.scalars(select(AutomationJob))).all()
    assert all(j.state == "done" for j in jobs) and all(j.attempts == 1 for j in jobs)
