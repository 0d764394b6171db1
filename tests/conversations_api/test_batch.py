"""Sending a batch (the inbox's offline queue): in order, each once, refusals reported one by
one, a replayed batch sends nothing again, access and validation like single sends."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conversations_api.util import audit, world
from tests.helpers import auth, eventually
from wadesk.conversations.models import Message
from wadesk.outbox.models import OutboxItem


def batch(texts: list[str], prefix: str = "k") -> dict[str, object]:
    return {
        "messages": [
            {"type": "text", "text": t, "idempotency_key": f"{prefix}-{n}"}
            for n, t in enumerate(texts)
        ]
    }


async def test_a_batch_is_sent_in_order_once_and_a_replay_sends_nothing(live):
    w = await world(live)
    cid = w["conversations"][0]
    _, agent = w["agent"]
    texts = [f"offline {n:02d}" for n in range(30)]
    url = f"/api/v1/conversations/{cid}/messages/batch"
    first = await live.client.post(url, json=batch(texts), headers=auth(agent))
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == [201] * 30
    assert [r["message"]["text"] for r in results] == texts
    ids = [r["message"]["id"] for r in results]
    assert ids == sorted(ids)
    # The answer was lost, the client sends the same batch again: nothing new is queued.
    again = await live.client.post(url, json=batch(texts), headers=auth(agent))
    assert [r["status"] for r in again.json()["results"]] == [200] * 30
    assert [r["message"]["id"] for r in again.json()["results"]] == ids
    async with live.runtime.db.session() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.text.like("offline %"))
        )
        queued = await session.scalar(select(func.count()).select_from(OutboxItem))
    assert stored == 30 and queued == 30
    assert len(await audit(live, "message.send")) == 30

    async def delivered() -> list[str]:
        sent = live.simulator.outbound(w["inbox"]["phone_number_id"])
        return [o["body"]["text"]["body"] for o in sent] if len(sent) >= 30 else []

    assert await eventually(delivered, timeout=60) == texts


async def test_a_refused_message_is_reported_and_the_others_still_go(live):
    w = await world(live)
    cid = w["conversations"][0]
    _, agent = w["agent"]
    body = batch(["before", "after"])
    body["messages"].insert(  # type: ignore[attr-defined]
        1,
        {
            "type": "reaction",
            "content": {"message_id": 999_999, "emoji": "👍"},
            "idempotency_key": "k-bad",
        },
    )
    body["messages"].append(  # type: ignore[attr-defined]
        {"type": "text", "text": "another body, same key", "idempotency_key": "k-0"}
    )
    response = await live.client.post(
        f"/api/v1/conversations/{cid}/messages/batch", json=body, headers=auth(agent)
    )
    assert response.status_code == 422  # two messages of one batch share a key
    body["messages"].pop()  # type: ignore[attr-defined]
    response = await live.client.post(
        f"/api/v1/conversations/{cid}/messages/batch", json=body, headers=auth(agent)
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["error"]["code"] == "reaction_target_unknown"
    assert results[1]["message"] is None
    # The same key with another text, later: refused for that message only.
    reuse = await live.client.post(
        f"/api/v1/conversations/{cid}/messages/batch",
        json={"messages": [{"type": "text", "text": "changed", "idempotency_key": "k-0"}]},
        headers=auth(agent),
    )
    assert reuse.json()["results"][0]["status"] == 409
    assert reuse.json()["results"][0]["error"]["code"] == "idempotency_key_reused"
    async with live.runtime.db.session() as session:
        texts = (
            await session.scalars(
                select(Message.text)
                .where(Message.conversation_id == cid, Message.direction == "out")
                .order_by(Message.id)
            )
        ).all()
    assert list(texts) == ["before", "after"]


async def test_batches_are_checked_like_single_sends(live):
    w = await world(live)
    cid = w["conversations"][0]
    _, outsider = w["outsider"]
    _, agent = w["agent"]
    url = f"/api/v1/conversations/{cid}/messages/batch"
    hidden = await live.client.post(url, json=batch(["x"]), headers=auth(outsider))
    assert hidden.status_code == 404
    for bad in (
        {"messages": []},
        batch([f"m{n}" for n in range(101)]),
        {"messages": [{"type": "text", "text": "no key"}]},
        {"messages": [{"type": "text", "text": "x" * 4097, "idempotency_key": "a"}]},
        {"messages": [{"type": "text", "text": "x", "idempotency_key": ""}]},
    ):
        response = await live.client.post(url, json=bad, headers=auth(agent))
        assert response.status_code == 422, bad
        assert response.json()["error"]["message"]
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxItem)) == 0
