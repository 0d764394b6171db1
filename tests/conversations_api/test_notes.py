"""Private notes and @mentions: API, action, rows, events, audit, access."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conversations_api.util import audit, events, world
from tests.helpers import auth, eventually
from wadesk.conversations.actions import mentioned_handles
from wadesk.conversations.models import Conversation, Mention, Message
from wadesk.outbox.models import OutboxItem


async def test_a_note_is_in_the_thread_never_in_the_outbox_and_notifies_mentions(live):
    w = await world(live)
    cid = w["conversations"][0]
    agent_id, agent = w["agent"]
    sup_id, sup = w["sup"]
    async with live.runtime.db.session() as session:
        before = await session.get(Conversation, cid)
        window_before = before.last_customer_message_at
        preview_before = before.last_message_preview
    response = await live.client.post(
        f"/api/v1/conversations/{cid}/notes",
        json={"text": "Refund approved, @boss@example.com please confirm", "mentions": [sup_id]},
        headers=auth(agent),
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["type"] == "note" and note["status"] == "note" and note["direction"] == "out"
    assert note["sender_user_id"] == agent_id
    thread = (
        await live.client.get(f"/api/v1/conversations/{cid}/messages", headers=auth(agent))
    ).json()["items"]
    assert thread[0]["id"] == note["id"]
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxItem)) == 0
        conversation = await session.get(Conversation, cid)
        assert conversation.last_customer_message_at == window_before
        assert conversation.last_message_preview == preview_before
        mentioned = set(
            await session.scalars(select(Mention.user_id).where(Mention.message_id == note["id"]))
        )
    admin_id, admin = w["admin"]
    assert mentioned == {sup_id, admin_id}
    created = [e for e in await events(live, "message.created") if e["message_id"] == note["id"]]
    assert created and created[0]["conversation_id"] == cid
    mention_events = await events(live, "mention.created")
    assert {e["user_id"] for e in mention_events} == {sup_id, admin_id}
    assert all(e["message_id"] == note["id"] for e in mention_events)
    [entry] = await audit(live, "note.create")
    assert entry.target_id == str(note["id"])

    # The supervisor lists it (unread first), marks it read; the agent has none.
    mine = (await live.client.get("/api/v1/mentions", headers=auth(sup))).json()["items"]
    assert len(mine) == 1 and mine[0]["read_at"] is None and mine[0]["conversation_id"] == cid
    assert "Refund approved" in mine[0]["excerpt"] and mine[0]["author_user_id"] == agent_id
    assert (await live.client.get("/api/v1/mentions", headers=auth(agent))).json()["items"] == []
    other = await live.client.post(f"/api/v1/mentions/{mine[0]['id']}/read", headers=auth(agent))
    assert other.status_code == 404
    read = await live.client.post(f"/api/v1/mentions/{mine[0]['id']}/read", headers=auth(sup))
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = await live.client.get("/api/v1/mentions", params={"unread": True}, headers=auth(sup))
    assert unread.json()["items"] == []
    # the admin marks all theirs read at once
    marked = await live.client.post("/api/v1/mentions/read", json={}, headers=auth(admin))
    assert marked.json() == {"marked": 1}


async def test_the_simulator_never_receives_a_note(live):
    w = await world(live)
    cid = w["conversations"][0]
    _, agent = w["agent"]
    await live.client.post(
        f"/api/v1/conversations/{cid}/notes", json={"text": "internal only"}, headers=auth(agent)
    )
    sent = await live.client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"type": "text", "text": "public reply"},
        headers=auth(agent),
    )
    assert sent.status_code == 201

    async def delivered():
        async with live.runtime.db.session() as session:
            message = await session.get(Message, sent.json()["id"])
            return message.status in ("sent", "delivered", "read")

    await eventually(delivered, timeout=30)
    bodies = [s["body"].get("text", {}).get("body") for s in live.simulator.outbound()]
    assert bodies == ["public reply"]
    async with live.runtime.db.session() as session:
        outbox = (await session.scalars(select(OutboxItem.message_id))).all()
    assert outbox == [sent.json()["id"]]


async def test_bad_notes_and_mentions_are_refused_with_a_reason(live):
    w = await world(live)
    cid = w["conversations"][0]
    _, agent = w["agent"]
    out_id, outsider = w["outsider"]
    cases = [
        ({"text": ""}, 422),
        ({"text": "   "}, 422),
        ({"text": "x" * 10_001}, 422),
        ({"text": "hi", "mentions": [out_id]}, 422),  # may not see the inbox
        ({"text": "hi", "mentions": [987654]}, 422),
        ({"text": "hi", "extra": 1}, 422),
    ]
    for body, status in cases:
        response = await live.client.post(
            f"/api/v1/conversations/{cid}/notes", json=body, headers=auth(agent)
        )
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["message"]
    refused = await live.client.post(
        f"/api/v1/conversations/{cid}/notes",
        json={"text": "hi", "mentions": [out_id]},
        headers=auth(agent),
    )
    assert refused.json()["error"]["code"] == "invalid_mention"
    # someone who cannot see the conversation gets 404, and nothing is written
    hidden = await live.client.post(
        f"/api/v1/conversations/{cid}/notes", json={"text": "hi"}, headers=auth(outsider)
    )
    assert hidden.status_code == 404
    async with live.runtime.db.session() as session:
        notes = await session.scalar(
            select(func.count()).select_from(Message).where(Message.type == "note")
        )
    assert notes == 0


def test_mention_handles_are_read_from_the_text():
    assert mentioned_handles("ping @maria and @Sam@Example.com.") == ["maria", "sam@example.com"]
    assert mentioned_handles("mail me at joe@example.com") == []
    assert mentioned_handles("@maria @maria") == ["maria"]


async def test_any_note_body_gets_201_or_a_4xx_with_a_message_never_a_500(live):
    w = await world(live, customers=1)
    cid = w["conversations"][0]
    _, agent = w["agent"]
    base = live.base_url
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=st.dictionaries(
            st.sampled_from(["text", "mentions", "x"]),
            json_values | st.lists(st.integers(), max_size=3),
            max_size=3,
        )
    )
    def check(body) -> None:
        with httpx.Client(base_url=base, headers=auth(agent), timeout=10) as client:
            response = client.post(f"/api/v1/conversations/{cid}/notes", json=body)
        assert response.status_code in (201, 422), (body, response.text)
        if response.status_code == 422:
            error = response.json()["error"]
            assert error["code"] and error["message"]

    await asyncio.to_thread(check)
