"""Strategies, capacity, the queue and its order, draining when a slot frees."""

from __future__ import annotations

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
