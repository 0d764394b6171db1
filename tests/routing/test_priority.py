"""Priority customers: built-in rules on contact attributes and history, queue jumping,
first-response targets and breaches, re-evaluation when attributes change."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.helpers import auth
from tests.routing.util import (
    assignee,
    config,
    queued,
    resolve,
    set_online,
    world,
    write_in,
)
from wadesk.conversations.models import Conversation
from wadesk.routing import actions


async def _contact(live, w, phone: str, **attributes) -> int:
    r = await live.client.post(
        "/api/v1/contacts",
        json={"name": "Customer", "phone": f"+{phone}", "attributes": attributes},
        headers=auth(w.admin),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _routing(live, w, cid: int) -> dict:
    r = await live.client.get(f"/api/v1/routing/conversations/{cid}", headers=auth(w.admin))
    assert r.status_code == 200, r.text
    return r.json()


async def _conversation(live, w, cid: int) -> dict:
    return (await live.client.get(f"/api/v1/conversations/{cid}", headers=auth(w.admin))).json()


async def test_priority_rules_tag_label_and_jump_the_queue(live):
    w = await world(live, ("ana",))
    ana = w.agents["ana"][0]
    await config(live, w, default_capacity=1)
    await _contact(live, w, "5521900000001", returns_90d=2)
    await _contact(live, w, "5521900000002", monthly_spend="1500.50")
    await _contact(live, w, "5521900000003", returns_90d=1, monthly_spend=1000)  # neither
    plain1 = await write_in(live, w, "5521900000009")
    plain2 = await write_in(live, w, "5521900000003")
    vip = await write_in(live, w, "5521900000002")
    returns = await write_in(live, w, "5521900000001")
    # priority (urgent) first, then vip (high), then the others by waiting time.
    assert await queued(live) == [returns, vip, plain1, plain2]
    facts = await _routing(live, w, returns)
    assert facts["tags"] == ["priority"] and facts["queue_position"] == 1
    assert facts["first_response_due_at"] is not None
    conv = await _conversation(live, w, returns)
    assert conv["priority"] == "urgent" and "priority" in conv["labels"]
    assert (await _conversation(live, w, vip))["priority"] == "high"
    assert (await _routing(live, w, plain2))["tags"] == []
    assert (await _routing(live, w, plain2))["first_response_due_at"] is None
    await set_online(live, w, "ana")
    assert await assignee(live, returns) == ana and await queued(live) == [vip, plain1, plain2]
    await resolve(live, w, returns)
    assert await assignee(live, vip) == ana and await queued(live) == [plain1, plain2]


async def test_frequent_askers_are_tagged_on_their_third_conversation(live):
    w = await world(live, ("ana",))
    tags = []
    for _ in range(3):
        cid = await write_in(live, w, "5521911111111")
        tags.append((await _routing(live, w, cid))["tags"])
        await resolve(live, w, cid)
    assert tags == [[], [], ["frequent"]]


async def test_attribute_change_reevaluates_open_conversations(live):
    w = await world(live, ("ana",))
    contact = await _contact(live, w, "5521922222222")
    cid = await write_in(live, w, "5521922222222")
    assert (await _routing(live, w, cid))["tags"] == []
    r = await live.client.patch(
        f"/api/v1/contacts/{contact}",
        json={"attributes": {"monthly_spend": 5000}},
        headers=auth(w.admin),
    )
    assert r.status_code == 200
    # The CRM's push is picked up by the routing loop (or at once where the lead wires
    # contacts.do_update_contact to routing.actions.reevaluate_contact).
    async with live.runtime.db.session() as session:
        assert await actions.reevaluate_contact(session, contact) == 1
    facts = await _routing(live, w, cid)
    assert facts["tags"] == ["vip"] and facts["first_response_due_at"] is not None
    conv = await _conversation(live, w, cid)
    assert conv["priority"] == "high" and conv["labels"] == ["vip"]
    async with live.runtime.db.session() as session:
        assert await actions.reevaluate_contact(session, contact) == 0  # once


async def test_first_response_target_breach_is_counted_once(live):
    w = await world(live, ("ana",))
    await config(live, w, first_response_seconds=1)
    await _contact(live, w, "5521933333331", returns_90d=3)
    await _contact(live, w, "5521933333332", returns_90d=3)
    late = await write_in(live, w, "5521933333331")
    quick = await write_in(live, w, "5521933333332")
    # quick gets an answer in time (a reply within the service window).
    r = await live.client.post(
        f"/api/v1/conversations/{quick}/messages",
        json={"type": "text", "text": "Hello, how can I help?"},
        headers=auth(w.admin),
    )
    assert r.status_code in (200, 201, 202), r.text
    await asyncio.sleep(1.3)
    for _ in range(2):
        async with live.runtime.db.session() as session:
            await actions.sweep_first_responses(session)
    late_facts, quick_facts = await _routing(live, w, late), await _routing(live, w, quick)
    assert late_facts["breached_at"] is not None and late_facts["first_response_at"] is None
    assert quick_facts["breached_at"] is None and quick_facts["first_response_at"] is not None
    overview = (await live.client.get("/api/v1/routing/queue", headers=auth(w.admin))).json()
    assert overview["breaches"] == 1 and overview["breaches_open"] == 1
    async with live.runtime.db.session() as session:
        status = await session.scalar(select(Conversation.status).where(Conversation.id == late))
    assert status == "open"


async def test_a_new_customer_is_routed_without_looking_up_a_history_it_cannot_have(live):
    """Contacts created by the batch have no attributes and no earlier conversations: routing
    does not query them (three statements in the ingest transaction of every new customer)."""
    from sqlalchemy import event

    w = await world(live, ("ana",))
    await _contact(live, w, "5521900000021", monthly_spend="1500.50")
    seen: list[str] = []

    def record(*args) -> None:
        seen.append(args[2])

    engine = live.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await write_in(live, w, "5521900000022")  # new
        new = list(seen)
        seen.clear()
        vip = await write_in(live, w, "5521900000021")  # saved before, with attributes
        known = list(seen)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    def lookups(statements: list[str]) -> list[str]:
        return [
            s
            for s in statements
            if "contacts.attributes" in s
            or ("count(*)" in s and "FROM conversations" in s)
            or ("conversations.assignee_id" in s and "last_activity_at >=" in s)
        ]

    assert lookups(new) == []
    assert len(lookups(known)) >= 2  # attributes and the 30-day count
    assert (await _conversation(live, w, vip))["priority"] == "high"
