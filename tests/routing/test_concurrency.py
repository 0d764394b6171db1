"""Two processes assigning at once never exceed capacity and never assign a conversation
twice (PostgreSQL: row locks on the agents, skip-locked conversations)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.helpers import SYSTEM, create_inbox, envelope, post_signed, settle, text_message
from wadesk.accounts.actions import do_add_inbox_member, do_create_user
from wadesk.audit.models import AuditEvent
from wadesk.audit.queries import verify_chain
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow
from wadesk.routing.actions import do_update_config
from wadesk.routing.models import AgentState, QueueEntry

ROOT = Path(__file__).resolve().parents[2]
AGENTS, CAPACITY, CONVERSATIONS = 8, 3, 120


async def _max_load(live) -> int:
    async with live.runtime.db.session() as session:
        counts = (
            await session.execute(
                select(func.count())
                .where(Conversation.assignee_id.is_not(None), Conversation.status != "resolved")
                .group_by(Conversation.assignee_id)
            )
        ).scalars()
        return max(counts, default=0)


async def test_two_processes_never_exceed_capacity_nor_assign_twice(live, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has a single writer; the race needs PostgreSQL")
    inbox = await create_inbox(live)
    async with live.runtime.db.session() as session:
        await do_update_config(session, actor=SYSTEM, values={"default_capacity": CAPACITY})
        for i in range(AGENTS):
            user = await do_create_user(
                session,
                actor=SYSTEM,
                email=f"race{i}@example.com",
                name=f"r{i}",
                role="agent",
                password=None,
            )
            await do_add_inbox_member(session, actor=SYSTEM, inbox_id=inbox["id"], user=user)
            session.add(
                AgentState(user_id=user.id, availability="offline", languages=[], assigned_total=0)
            )
    messages = [
        text_message(f"55619{i:08d}", f"wamid.race.{i}", f"race {i}") for i in range(CONVERSATIONS)
    ]
    await post_signed(live.client, inbox["webhook_url"], envelope(messages))
    await settle(live)
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(QueueEntry)) == CONVERSATIONS
        # Everyone comes online without draining: the two processes will race for the queue.
        await session.execute(
            update(AgentState).values(availability="online", last_seen_at=utcnow())
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.routing.race_worker",
            "60",
            "4",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    observed = 0
    while any(p.returncode is None for p in procs):
        observed = max(observed, await _max_load(live))
        await asyncio.sleep(0.005)
    outputs = [await p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
        assert "errors=0" in out.decode(), out.decode()
    assigned = [int(o.decode().split("assigned=")[1].split()[0]) for o, _ in outputs]
    print("race:", [o.decode().strip() for o, _ in outputs], "max load seen", observed)
    assert all(n > 0 for n in assigned), assigned  # both processes took part
    assert observed <= CAPACITY and await _max_load(live) <= CAPACITY
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(QueueEntry)) == 0
        per_conversation = (
            await session.execute(
                select(AuditEvent.target_id, func.count())
                .where(AuditEvent.action == "routing.assign")
                .group_by(AuditEvent.target_id)
            )
        ).all()
        assert len(per_conversation) == CONVERSATIONS
        assert {n for _, n in per_conversation} == {1}  # never assigned twice
        unassigned = await session.scalar(
            select(func.count()).where(Conversation.assignee_id.is_(None))
        )
        assert unassigned == 0
        assert (await verify_chain(session, live.runtime.settings.resolved_secret_key())).ok
