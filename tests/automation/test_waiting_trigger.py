"""The "waiting" trigger: a customer's message left without a reply for a rule's minutes
queues one job per waiting episode (automation/waiting.py), run through the normal rule path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.automation.conftest import (
    add_rule,
    customer_says,
    received,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import auth, create_user
from wadesk.automation.actions import queue_waiting_jobs
from wadesk.automation.models import AutomationJob, AutomationRule
from wadesk.automation.waiting import sweep_waiting
from wadesk.conversations.models import Conversation, Message


async def waiting_rule(live: Any, inbox_id: int, minutes: int, actions: list[Any]) -> int:
    return await add_rule(
        live,
        inbox_id,
        name=f"Waiting {minutes} min",
        trigger="waiting",
        conditions={"minutes": minutes},
        actions=actions,
    )


async def time_passes(live: Any, minutes: int) -> None:
    """Everything stored so far happened ``minutes`` earlier."""
    delta = timedelta(minutes=minutes)
    async with live.runtime.db.session() as session:
        for conversation in (await session.scalars(select(Conversation))).all():
            if conversation.last_customer_message_at is not None:
                conversation.last_customer_message_at -= delta
        for message in (await session.scalars(select(Message))).all():
            message.created_at -= delta


async def sweep(live: Any) -> int:
    queued = await sweep_waiting(live.runtime.db)
    assert queued is not None  # nobody else holds the lease
    await settle_jobs(live)
    return queued


async def state(live: Any) -> tuple[Conversation, list[str], list[AutomationJob]]:
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        assert conversation is not None
        notes = (
            await session.scalars(
                select(Message.text).where(Message.status == "note").order_by(Message.id)
            )
        ).all()
        jobs = (
            await session.scalars(
                select(AutomationJob)
                .where(AutomationJob.trigger == "waiting")
                .order_by(AutomationJob.id)
            )
        ).all()
        return conversation, [n or "" for n in notes], list(jobs)


async def test_waiting_rules_are_validated(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    url = f"/api/v1/automation/inboxes/{inbox['id']}/rules"
    actions = [{"type": "set_priority", "priority": "high"}]
    for conditions in (
        {},
        {"minutes": 0},
        {"minutes": 10_081},
        {"minutes": "10"},
        {"minutes": True},
    ):
        bad = await live.client.post(
            url,
            json={"name": "w", "trigger": "waiting", "conditions": conditions, "actions": actions},
            headers=auth(token),
        )
        assert bad.status_code == 422, (conditions, bad.text)
        assert bad.json()["error"]["code"] == "invalid_conditions"
        assert "minutes" in bad.json()["error"]["message"]
    other = await live.client.post(
        url,
        json={"name": "m", "conditions": {"minutes": 5}, "actions": actions},
        headers=auth(token),
    )
    assert other.status_code == 422 and "only for the 'waiting' trigger" in other.text
    good = await live.client.post(
        url,
        json={
            "name": "w",
            "trigger": "waiting",
            "conditions": {"minutes": 10_080},
            "actions": actions,
        },
        headers=auth(token),
    )
    assert good.status_code == 201, good.text
    rule_url = f"/api/v1/automation/rules/{good.json()['id']}"
    # Changing only the trigger would leave minutes on a message rule.
    patched = await live.client.patch(rule_url, json={"trigger": "message"}, headers=auth(token))
    assert patched.status_code == 422 and "minutes" in patched.text
    patched = await live.client.patch(
        rule_url, json={"conditions": {"minutes": 15}}, headers=auth(token)
    )
    assert patched.status_code == 200, patched.text
    async with live.runtime.db.session() as session:
        rule = await session.get(AutomationRule, good.json()["id"])
        assert rule is not None and rule.conditions == {"minutes": 15}


async def test_waiting_fires_once_per_episode_and_again_after_a_new_message(live):
    inbox = await sim_inbox(live)
    rule_id = await waiting_rule(
        live,
        inbox["id"],
        10,
        [
            {"type": "set_priority", "priority": "high"},
            {"type": "add_label", "label": "waiting"},
            {"type": "handoff", "note": "waiting 10 min"},
        ],
    )
    await customer_says(live, "hello, anybody?")
    await settle_jobs(live)
    assert await sweep(live) == 0  # not due yet
    await time_passes(live, 9)
    assert await sweep(live) == 0
    await time_passes(live, 2)
    assert await sweep(live) == 1
    conversation, notes, jobs = await state(live)
    assert conversation.priority == "high"
    assert notes == ["🤖 waiting 10 min"]
    assert [(j.state, j.outcome["rule_id"], j.outcome["waiting_rule_id"]) for j in jobs] == [
        ("done", rule_id, rule_id)
    ]
    # The same episode: nothing more, however often the sweep runs.
    assert await sweep(live) == 0
    await time_passes(live, 60)
    assert await sweep(live) == 0
    assert len((await state(live))[2]) == 1
    # The customer writes again: a new episode, due 10 minutes later.
    await customer_says(live, "still there?")
    await settle_jobs(live)
    assert await sweep(live) == 0
    await time_passes(live, 10)
    assert await sweep(live) == 1
    _, notes, jobs = await state(live)
    assert notes == ["🤖 waiting 10 min", "🤖 waiting 10 min"]
    assert len(jobs) == 2 and jobs[0].message_id != jobs[1].message_id
    assert received(live) == []  # no reply action: nothing sent to the customer
    async with live.runtime.db.session() as session:
        rule = await session.get(AutomationRule, rule_id)
        assert rule is not None and rule.matches == 2


async def test_a_persons_reply_before_the_deadline_means_nothing_fires(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="agent@example.com")
    await waiting_rule(live, inbox["id"], 10, [{"type": "set_priority", "priority": "urgent"}])
    await customer_says(live, "hello")
    await settle_jobs(live)
    conversation, _, _ = await state(live)
    answer = await live.client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"type": "text", "text": "Hi, how can I help?"},
        headers=auth(token),
    )
    assert answer.status_code in (200, 201, 202), answer.text
    await time_passes(live, 30)
    assert await sweep(live) == 0
    conversation, notes, jobs = await state(live)
    assert conversation.priority == "none" and jobs == [] and notes == []


async def test_a_still_here_reply_is_sent_once_and_ends_the_wait(live):
    inbox = await sim_inbox(live)
    await waiting_rule(
        live,
        inbox["id"],
        5,
        [{"type": "reply", "text": "We are still here, {{contact.first_name}}!"}],
    )
    await customer_says(live, "hello")
    await settle_jobs(live)
    await time_passes(live, 6)
    assert await sweep(live) == 1
    assert (await wait_received(live, 1)) == ["We are still here, Ana!"]
    await time_passes(live, 30)
    assert await sweep(live) == 0
    assert received(live) == ["We are still here, Ana!"]


async def test_a_reply_between_queueing_and_running_wins(live):
    """The job re-checks that the customer still waits: a job queued just before a person
    answered does nothing."""
    inbox = await sim_inbox(live)
    await waiting_rule(live, inbox["id"], 10, [{"type": "set_priority", "priority": "high"}])
    await customer_says(live, "hello")
    await settle_jobs(live)
    await time_passes(live, 11)
    # Queued and, in the same transaction, resolved: the worker sees it no longer waits.
    async with live.runtime.db.session() as session:
        assert await queue_waiting_jobs(session) == 1
        conversation = await session.scalar(select(Conversation))
        assert conversation is not None
        conversation.status = "resolved"
    await settle_jobs(live)
    conversation, _, jobs = await state(live)
    assert conversation.priority == "none"
    assert [j.outcome.get("skipped") for j in jobs] == ["no longer waiting"]
