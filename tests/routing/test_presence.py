"""Stickiness, going offline (keep or return), presence timeout, supervisors' reassignment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.helpers import auth
from tests.routing.util import (
    assignee,
    config,
    inbox_settings,
    loads,
    queued,
    resolve,
    set_online,
    world,
    write_in,
)
from wadesk.db import utcnow
from wadesk.routing import actions
from wadesk.routing.models import AgentState


async def test_stickiness_returns_a_customer_to_their_last_agent(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await inbox_settings(live, w, sticky_days=30)
    await set_online(live, w, "ana", "bo")
    first = await write_in(live, w, "5531900000001")
    assert await assignee(live, first) == ana
    await resolve(live, w, first)
    # Without stickiness the rotation would now pick bo (ana was assigned last).
    again = await write_in(live, w, "5531900000001")
    assert await assignee(live, again) == ana
    other = await write_in(live, w, "5531900000002")
    assert await assignee(live, other) == bo


async def test_without_stickiness_the_rotation_decides(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await set_online(live, w, "ana", "bo")
    first = await write_in(live, w, "5531911111111")
    assert await assignee(live, first) == ana
    await resolve(live, w, first)
    assert await assignee(live, await write_in(live, w, "5531911111111")) == bo


async def test_stickiness_yields_when_the_agent_is_full(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await inbox_settings(live, w, sticky_days=30, capacity=1)
    await set_online(live, w, "ana", "bo")
    first = await write_in(live, w, "5531922222221")
    assert await assignee(live, first) == ana
    await resolve(live, w, first)
    bos = await write_in(live, w, "5531922222222")
    assert await assignee(live, bos) == bo
    anas = await write_in(live, w, "5531922222223")
    assert await assignee(live, anas) == ana
    # The returning customer's agent (ana) is full, and so is bo: it waits...
    again = await write_in(live, w, "5531922222221")
    assert await assignee(live, again) is None and await queued(live) == [again]
    # ...and takes the first free slot, even if it is not ana's.
    await resolve(live, w, bos)
    assert await assignee(live, again) == bo
    assert max((await loads(live)).values()) == 1


async def test_going_offline_returns_unanswered_conversations_when_configured(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await inbox_settings(live, w, offline_behaviour="return")
    await set_online(live, w, "ana")
    answered = await write_in(live, w, "5531933333331")
    unanswered = await write_in(live, w, "5531933333332")
    assert await assignee(live, answered) == ana and await assignee(live, unanswered) == ana
    r = await live.client.post(
        f"/api/v1/conversations/{answered}/messages",
        json={"type": "text", "text": "On it"},
        headers=auth(w.agents["ana"][1]),
    )
    assert r.status_code in (200, 201, 202), r.text
    await set_online(live, w, "ana", availability="offline")
    assert await assignee(live, answered) == ana
    assert await assignee(live, unanswered) is None and await queued(live) == [unanswered]
    await set_online(live, w, "bo")
    assert await assignee(live, unanswered) == bo


async def test_going_offline_keeps_conversations_by_default(live):
    w = await world(live, ("ana",))
    ana = w.agents["ana"][0]
    await set_online(live, w, "ana")
    cid = await write_in(live, w, "5531944444441")
    await set_online(live, w, "ana", availability="offline")
    assert await assignee(live, cid) == ana and await queued(live) == []


async def test_presence_timeout_takes_agents_offline_and_a_connection_brings_them_back(live):
    w = await world(live, ("ana", "bo"))
    ana = w.agents["ana"][0]
    await set_online(live, w, "ana", "bo")
    async with live.runtime.db.session() as session:
        await session.execute(
            update(AgentState)
            .where(AgentState.user_id == ana)
            .values(last_seen_at=utcnow() - timedelta(minutes=10))
        )
    async with live.runtime.db.session() as session:
        assert await actions.sweep_presence(session, 120) == 1
    me = (await live.client.get("/api/v1/routing/me", headers=auth(w.agents["ana"][1]))).json()
    assert me["availability"] == "offline"
    cid = await write_in(live, w, "5531955555551")
    assert await assignee(live, cid) == w.agents["bo"][0]  # only online agents receive
    async with live.runtime.db.session() as session:
        await actions.touch_presence(session, ana)
    me = (await live.client.get("/api/v1/routing/me", headers=auth(w.agents["ana"][1]))).json()
    assert me["availability"] == "online"
    # An agent who chose "away" is not brought back online by a connection.
    await set_online(live, w, "ana", availability="away")
    async with live.runtime.db.session() as session:
        await actions.touch_presence(session, ana)
    me = (await live.client.get("/api/v1/routing/me", headers=auth(w.agents["ana"][1]))).json()
    assert me["availability"] == "away"


async def test_supervisor_reassigns_beyond_capacity_only_with_force(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await config(live, w, default_capacity=1)
    await set_online(live, w, "ana", "bo")
    c1 = await write_in(live, w, "5531966666661")
    c2 = await write_in(live, w, "5531966666662")
    assert {await assignee(live, c1), await assignee(live, c2)} == {ana, bo}
    target = await assignee(live, c1)
    url = f"/api/v1/routing/conversations/{c2}/assign"
    r = await live.client.post(url, json={"user_id": target}, headers=auth(w.admin))
    assert r.status_code == 409 and r.json()["error"]["code"] == "capacity_exceeded"
    r = await live.client.post(url, json={"user_id": target, "force": True}, headers=auth(w.admin))
    assert r.status_code == 200, r.text
    assert r.json()["assignee_id"] == target
    assert (await loads(live))[target] == 2
    # An agent may not reassign (403); the queue page is for supervisors.
    r = await live.client.post(url, json={"user_id": None}, headers=auth(w.agents["ana"][1]))
    assert r.status_code == 403
    overview = (await live.client.get("/api/v1/routing/queue", headers=auth(w.admin))).json()
    assert overview["waiting"] == 0
    assert {a["user_id"]: a["load"] for a in overview["agents"]}[target] == 2
