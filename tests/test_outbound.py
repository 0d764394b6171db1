"""Outbound end to end: API -> message + outbox row -> worker -> simulator (real HTTP) ->
signed status webhooks -> statuses move forward."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, create_user, eventually, settle
from wadesk.channels.simulator.faults import FaultPlan
from wadesk.conversations.models import Conversation, Message
from wadesk.db import utcnow
from wadesk.inboxes.models import Inbox
from wadesk.outbox.models import OutboxItem

CUSTOMER = "5511912345678"


async def start_conversation(live) -> tuple[int, str]:
    """A customer writes first (opening the 24-hour window); returns (conversation id, token)."""
    await create_inbox(live)
    _, token = await create_user(live, email="agent@example.com")
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID, CUSTOMER, "Ana", {"type": "text", "text": "oi"}
    )
    await settle(live)
    listed = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()
    return listed["items"][0]["id"], token


async def message_status(live, message_id: int) -> str:
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
        return message.status


async def test_reply_is_sent_once_and_ticks_reach_read(fast_retries, live):
    conversation_id, token = await start_conversation(live)
    response = await live.client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"type": "text", "text": "Seu pedido saiu para entrega 🚚"},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["status"] == "queued" and message["direction"] == "out"
    await eventually(lambda: _is(live, message["id"], "read"))
    sent = live.simulator.outbound(PHONE_NUMBER_ID)
    assert [(s["to"], s["body"]["text"]["body"]) for s in sent] == [
        (CUSTOMER, "Seu pedido saiu para entrega 🚚")
    ]
    async with live.runtime.db.session() as session:
        stored = await session.get(Message, message["id"])
        assert stored.external_id == sent[0]["wamid"]
        # Provider timestamps are whole seconds.
        assert stored.sent_at.replace(microsecond=0) <= stored.delivered_at <= stored.read_at


async def _is(live, message_id: int, status: str) -> bool:
    return await message_status(live, message_id) == status


async def test_idempotency_key_never_sends_twice(fast_retries, live):
    conversation_id, token = await start_conversation(live)
    url = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {**auth(token), "Idempotency-Key": "client-42"}
    results = await asyncio.gather(
        *(live.client.post(url, json={"text": "once"}, headers=headers) for _ in range(5))
    )
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 1
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201]
    other = await live.client.post(url, json={"text": "something else"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    [message_id] = ids
    await eventually(lambda: _is(live, message_id, "read"))
    assert len(live.simulator.outbound(PHONE_NUMBER_ID)) == 1


async def test_free_form_outside_the_window_is_refused_with_a_clear_error(fast_retries, live):
    conversation_id, token = await start_conversation(live)
    async with live.runtime.db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(last_customer_message_at=utcnow() - timedelta(hours=25))
        )
    url = f"/api/v1/conversations/{conversation_id}/messages"
    refused = await live.client.post(url, json={"text": "late"}, headers=auth(token))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "window_closed"
    assert "template" in refused.json()["error"]["message"]
    template = await live.client.post(
        url,
        json={"type": "template", "content": {"name": "hello_world", "language": "en_US"}},
        headers=auth(token),
    )
    assert template.status_code == 201
    await eventually(lambda: _is(live, template.json()["id"], "read"))


@pytest.mark.parametrize("fault", ["http_500", "rate_limit", "pair_limit", "timeout"])
async def test_transient_failures_are_retried_until_sent(fast_retries, live, fault):
    fast_retries.graph_timeout_seconds = 1.0
    conversation_id, token = await start_conversation(live)
    live.simulator.set_faults(
        FaultPlan(
            recipients={CUSTOMER: fault},
            recipient_fault_times=2,
            timeout_seconds=2.0,
            timeout_accepts=False,
        )
    )
    response = await live.client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "retry me"},
        headers=auth(token),
    )
    await eventually(lambda: _is(live, response.json()["id"], "read"), timeout=20)
    state = live.simulator.state()
    assert state["max_copies"] == 1
    assert state["recipients"][CUSTOMER]["attempts"] >= 3


@pytest.mark.parametrize(
    ("fault", "code"), [("undeliverable", "131026"), ("reengagement", "131047")]
)
async def test_failed_status_marks_the_message_failed_with_a_reason(
    fast_retries, live, fault, code
):
    conversation_id, token = await start_conversation(live)
    live.simulator.set_faults(FaultPlan(recipients={CUSTOMER: fault}))
    response = await live.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "x"}, headers=auth(token)
    )
    message_id = response.json()["id"]
    await eventually(lambda: _is(live, message_id, "failed"))
    got = (
        await live.client.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token)
        )
    ).json()
    failed = next(m for m in got["items"] if m["id"] == message_id)
    assert failed["error_code"] == code and failed["error_title"]


async def test_permanent_send_error_is_not_retried_and_a_bad_token_flags_the_inbox(
    fast_retries, live
):
    conversation_id, token = await start_conversation(live)
    async with live.runtime.db.session() as session:
        inbox = await session.scalar(select(Inbox))
        inbox.access_token = "expired-token"
    response = await live.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "x"}, headers=auth(token)
    )
    message_id = response.json()["id"]
    await eventually(lambda: _is(live, message_id, "failed"))
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
        inbox = await session.scalar(select(Inbox))
    assert message.error_code == "190"
    assert "access token" in message.error_title
    assert inbox.needs_attention and "token" in inbox.attention_reason
    assert live.simulator.state()["sends"]["rejected_by_code"].get("190") == 1
    # After an admin fixes the token, a person can retry the message.
    async with live.runtime.db.session() as session:
        inbox = await session.scalar(select(Inbox))
        inbox.access_token = "EAAG-test-token"
    retried = await live.client.post(f"/api/v1/messages/{message_id}/retry", headers=auth(token))
    assert retried.status_code == 200
    await eventually(lambda: _is(live, message_id, "read"))


async def test_messages_to_one_customer_leave_in_order(fast_retries, live):
    conversation_id, token = await start_conversation(live)
    live.simulator.set_faults(FaultPlan(http_500=0.2, seed=7))
    url = f"/api/v1/conversations/{conversation_id}/messages"
    for i in range(30):
        response = await live.client.post(url, json={"text": f"line {i:02d}"}, headers=auth(token))
        assert response.status_code == 201

    async def all_sent() -> bool:
        async with live.runtime.db.session() as session:
            left = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.direction == "out", Message.status == "queued")
            )
        return left == 0

    await eventually(all_sent, timeout=30)
    texts = [s["body"]["text"]["body"] for s in live.simulator.outbound(PHONE_NUMBER_ID)]
    async with live.runtime.db.session() as session:
        rows = (
            await session.execute(
                select(
                    OutboxItem.id, OutboxItem.attempts, OutboxItem.last_error, OutboxItem.updated_at
                ).order_by(OutboxItem.id)
            )
        ).all()
    assert texts == [f"line {i:02d}" for i in range(30)], (
        texts,
        rows,
        live.simulator.state()["sends"],
    )


def test_a_recipient_queue_stops_at_a_row_waiting_for_retry():
    from wadesk.outbox.worker import _in_order

    pair = (1, "551100")
    other = (1, "551199")
    # Row 7 waits for a retry (pending, not due); 8..16 wait behind it; 17 is due.
    candidates = [(7, *pair), (17, *pair), (20, *other), (21, *other)]
    pending = {pair: [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], other: [19, 20, 21]}
    assert _in_order(candidates, pending) == [7]
    assert _in_order([(8, *pair), (9, *pair)], {pair: [8, 9, 10]}) == [8, 9]
