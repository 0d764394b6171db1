"""Strategies, capacity, the queue and its order, draining when a slot frees."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import auth, eventually
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


async def test_least_loaded_spreads_and_never_exceeds_capacity(live):
    w = await world(live)
    await config(live, w, default_capacity=2)
    await set_online(live, w, "ana", "bo", "cy")
    ana, bo, cy = (w.agents[n][0] for n in ("ana", "bo", "cy"))
    ids = [await write_in(live, w, f"5511900000{i:03d}") for i in range(6)]
    got = [await assignee(live, cid) for cid in ids]
    # Ties go to whoever waited longest since their last assignment: a rotation.
    assert got == [ana, bo, cy, ana, bo, cy]
    # Everyone is full: the next two wait, in arrival order.
    c7 = await write_in(live, w, "5511900000100")
    c8 = await write_in(live, w, "5511900000101")
    assert await assignee(live, c7) is None and await queued(live) == [c7, c8]
    assert max((await loads(live)).values()) == 2
    # bo resolves one: the head of the queue goes to bo at once, the other keeps waiting.
    bo_conversation = ids[got.index(bo)]
    await resolve(live, w, bo_conversation)
    assert await assignee(live, c7) == bo
    assert await queued(live) == [c8]
    me = (await live.client.get("/api/v1/routing/me", headers=auth(w.agents["bo"][1]))).json()
    assert me["load"] == 2 and me["capacity"] == 2 and me["availability"] == "online"


async def test_least_loaded_prefers_the_emptiest_agent(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    # ana carries two conversations assigned by hand; bo none.
    for i in range(2):
        cid = await write_in(live, w, f"5511911111{i:03d}")
        r = await live.client.patch(
            f"/api/v1/conversations/{cid}", json={"assignee_id": ana}, headers=auth(w.admin)
        )
        assert r.status_code == 200
    await set_online(live, w, "ana", "bo")
    got = [await assignee(live, await write_in(live, w, f"5511922222{i:03d}")) for i in range(3)]
    assert got == [bo, bo, ana]  # bo until loads are equal (2-2), then the longest wait: ana


async def test_round_robin_ignores_load_among_agents_with_room(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await inbox_settings(live, w, strategy="round_robin")
    for i in range(2):
        cid = await write_in(live, w, f"5511933333{i:03d}")
        await live.client.patch(
            f"/api/v1/conversations/{cid}", json={"assignee_id": ana}, headers=auth(w.admin)
        )
    await set_online(live, w, "ana", "bo")
    got = [await assignee(live, await write_in(live, w, f"5511944444{i:03d}")) for i in range(4)]
    assert got == [ana, bo, ana, bo]  # the rotation, although ana carries more
    # ana is full at 5 (2 by hand + 2 + this one); the rotation skips her.
    got = [await assignee(live, await write_in(live, w, f"5511955555{i:03d}")) for i in range(3)]
    assert got == [ana, bo, bo]
    assert (await loads(live))[ana] == 5


async def test_only_online_agents_receive_and_coming_online_drains(live):
    w = await world(live, ("ana", "bo"))
    ana = w.agents["ana"][0]
    await set_online(live, w, "bo", availability="busy")
    c1 = await write_in(live, w, "5511966666001")
    c2 = await write_in(live, w, "5511966666002")
    assert await queued(live) == [c1, c2]
    await set_online(live, w, "ana")
    assert await assignee(live, c1) == ana and await assignee(live, c2) == ana
    assert await queued(live) == []


async def test_raising_capacity_and_unassigning_drain_the_queue(live):
    w = await world(live, ("ana",))
    ana = w.agents["ana"][0]
    await config(live, w, default_capacity=1)
    await set_online(live, w, "ana")
    c1 = await write_in(live, w, "5511977777001")
    c2 = await write_in(live, w, "5511977777002")
    c3 = await write_in(live, w, "5511977777003")
    assert await assignee(live, c1) == ana and await queued(live) == [c2, c3]
    r = await live.client.patch(
        f"/api/v1/routing/agents/{ana}", json={"capacity": 2}, headers=auth(w.admin)
    )
    assert r.status_code == 200 and r.json()["capacity"] == 2 and r.json()["load"] == 2
    assert await assignee(live, c2) == ana and await queued(live) == [c3]
    # A hand-off back to the queue: c1 returns *at its original place* (ahead of c3), and
    # the freed slot is filled at once by the head: c1 itself.
    r = await live.client.patch(
        f"/api/v1/conversations/{c1}", json={"assignee_id": None}, headers=auth(w.admin)
    )
    assert r.status_code == 200
    assert await assignee(live, c1) == ana and await queued(live) == [c3]


async def test_a_resolve_during_another_drain_does_not_wait_and_the_drainer_fills_the_slot(
    live, backend
):
    """While another transaction holds routing's lock (a drain elsewhere), a resolve does not
    queue behind it: it commits at once and leaves the freed slot to the runtime's drainer,
    which assigns the queue's head as soon as the lock is free."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nobody else can hold the lock")
    from sqlalchemy import text

    from wadesk.routing.actions import ROUTING_LOCK

    w = await world(live, ("ana",))
    await config(live, w, default_capacity=1)
    await inbox_settings(live, w)
    await set_online(live, w, "ana")
    first = await write_in(live, w, "5511900000001")
    second = await write_in(live, w, "5511900000002")
    assert await assignee(live, first) == w.agents["ana"][0] and await queued(live) == [second]
    async with live.runtime.db.engine.connect() as other:
        await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
        await asyncio.wait_for(resolve(live, w, first), timeout=5)  # does not wait for it
        assert await queued(live) == [second]  # its drain was left for later
        await other.rollback()  # the other drain ends
    await eventually(lambda: _assigned_to(live, second, w.agents["ana"][0]))
    assert await queued(live) == []


async def _assigned_to(live, conversation_id: int, user_id: int) -> bool:
    return await assignee(live, conversation_id) == user_id
