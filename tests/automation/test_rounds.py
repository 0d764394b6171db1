"""Decided jobs are applied a round at a time (group commit): one transaction for the jobs
decided together, counters summed, and a round that fails retried job by job. Jobs claimed
later do not wait for the slowest of those claimed before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
import structlog.testing
from aiohttp import web
from sqlalchemy import select

from tests.automation.conftest import (
    add_rule,
    customer_says,
    demo_inbox,
    received,
    sim_inbox,
    wait_received,
)
from tests.helpers import eventually, local_http_server
from wadesk.automation.models import AutomationJob, AutomationRule, Integration
from wadesk.automation.worker import AutomationWorker
from wadesk.conversations.models import Message
from wadesk.groupcommit import in_session

CUSTOMERS = [f"55119876540{i:02d}" for i in range(6)]


async def _paused_worker(live: Any) -> AutomationWorker:
    """Stop the runtime's own automation loop; the test runs rounds itself."""
    live.runtime.automation.stop()
    return AutomationWorker(live.runtime.db, live.runtime.settings, live.runtime.http)


async def _rule(live: Any, inbox_id: int) -> int:
    return await add_rule(
        live,
        inbox_id,
        name="Opening hours",
        conditions={"keywords": ["open"]},
        actions=[{"type": "reply", "text": "We open at 9, {{contact.first_name}}."}],
    )


def _recording_rounds(worker: AutomationWorker, db: Any) -> list[int]:
    sizes: list[int] = []
    apply = worker._apply_batch

    async def recorded(session: Any, batch: list[Any]) -> None:
        sizes.append(len(batch))
        await apply(session, batch)

    worker._apply_batch = recorded  # type: ignore[method-assign]  (a job retried alone)
    worker._group._commit = in_session(db, recorded)  # a round (the group commit holds its own)
    return sizes


async def _replies(live: Any) -> dict[int, list[str]]:
    async with live.runtime.db.session() as session:
        rows = (
            await session.execute(
                select(Message.conversation_id, Message.text)
                .where(Message.direction == "out")
                .order_by(Message.id)
            )
        ).all()
    replies: dict[int, list[str]] = {}
    for conversation_id, text in rows:
        replies.setdefault(conversation_id, []).append(text)
    return replies


async def test_jobs_decided_together_are_applied_in_one_round(live):
    inbox = await sim_inbox(live)
    rule_id = await _rule(live, inbox["id"])
    worker = await _paused_worker(live)
    for i, wa_id in enumerate(CUSTOMERS):
        await customer_says(live, "are you open today?", wa_id=wa_id, name=f"Cliente{i} Silva")
    rounds = _recording_rounds(worker, live.runtime.db)
    await worker.run_once()
    await worker.wait_in_flight()
    assert rounds == [len(CUSTOMERS)]  # one transaction for the six
    replies = await _replies(live)
    assert sorted(text for texts in replies.values() for text in texts) == sorted(
        f"We open at 9, Cliente{i}." for i in range(len(CUSTOMERS))
    )
    assert all(len(texts) == 1 for texts in replies.values())
    async with live.runtime.db.session() as session:
        rule = await session.get(AutomationRule, rule_id)
        assert (rule.matches, rule.answered, rule.handed_off) == (6, 6, 0)
        jobs = (await session.scalars(select(AutomationJob))).all()
        assert {(j.state, j.outcome["sent"]) for j in jobs} == {("done", 1)}


async def _customers_asking(live: Any, count: int) -> tuple[int, AutomationWorker, list[Any]]:
    """The rule, a paused worker and ``count`` customers' questions; their jobs, oldest first."""
    inbox = await sim_inbox(live)
    rule_id = await _rule(live, inbox["id"])
    worker = await _paused_worker(live)
    for wa_id in CUSTOMERS[:count]:
        await customer_says(live, "open?", wa_id=wa_id)
    async with live.runtime.db.session() as session:
        jobs = (await session.scalars(select(AutomationJob).order_by(AutomationJob.id))).all()
    return rule_id, worker, list(jobs)


async def test_a_failing_job_does_not_hold_back_its_round(live):
    rule_id, worker, jobs = await _customers_asking(live, 4)
    broken = jobs[2].conversation_id
    rounds = _recording_rounds(worker, live.runtime.db)
    effects = worker._apply_effects

    async def fails_for_one(session: Any, conversation: Any, job_effects: Any) -> None:
        if conversation.id == broken:
            raise RuntimeError("a bug in one job's effects")
        await effects(session, conversation, job_effects)

    worker._apply_effects = fails_for_one  # type: ignore[method-assign]
    await worker.run_once()
    await worker.wait_in_flight()
    # The round of four failed as a whole (rolled back), then each job went alone.
    assert rounds[0] == 4 and sorted(rounds[1:]) == [1, 1, 1, 1]
    replies = await _replies(live)
    assert broken not in replies and len(replies) == 3
    async with live.runtime.db.session() as session:
        rule = await session.get(AutomationRule, rule_id)
        assert (rule.matches, rule.answered) == (3, 3)  # nothing of the failed round counted
        states = {
            j.conversation_id: (j.state, j.attempts)
            for j in (await session.scalars(select(AutomationJob))).all()
        }
    assert states.pop(broken) == ("pending", 1)  # retried after its lease
    assert set(states.values()) == {("done", 1)}


class GatedOrders:
    """A company's order API that answers only once the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.asked: list[str] = []
        self.url = ""

    async def order(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        self.asked.append(number)
        await self.gate.wait()
        return web.json_response(
            {
                "number": number,
                "status": "shipped",
                "carrier": "Correios",
                "progress": "in transit",
                "eta": "tomorrow",
            }
        )


@pytest.fixture
async def gated_orders() -> AsyncIterator[GatedOrders]:
    api = GatedOrders()
    app = web.Application()
    app.router.add_get("/orders/{number}", api.order)
    async with local_http_server(app) as url:
        api.url = url
        yield api
        api.gate.set()


async def test_a_slow_integration_does_not_hold_back_other_customers(live, gated_orders):
    inbox = await demo_inbox(live)
    await _rule(live, inbox["id"])
    async with live.runtime.db.session() as session:
        integration = await session.scalar(select(Integration))
        integration.url = gated_orders.url + "/orders/{{match.order}}"
    waiting, answered = CUSTOMERS[0], CUSTOMERS[1]
    await customer_says(live, "where is my order 12345", wa_id=waiting)

    async def asked() -> bool:
        return gated_orders.asked == ["12345"]

    await eventually(asked, timeout=15)
    # The order API holds the first job; the next customer's question is answered anyway.
    await customer_says(live, "are you open today?", wa_id=answered, name="Bruno Lima")
    assert await wait_received(live, 1, wa_id=answered) == ["We open at 9, Bruno."]
    assert received(live, waiting) == []
    gated_orders.gate.set()
    (reply,) = await wait_received(live, 1, wa_id=waiting)
    assert reply.startswith("📦 Order 12345 is shipped.")


async def test_a_job_that_crashes_is_logged_and_does_not_stop_the_others(live):
    _, worker, jobs = await _customers_asking(live, 3)
    broken = jobs[1].id
    decide = worker._decide

    async def crashes_for_one(item: Any) -> Any:
        if item.job_id == broken:
            raise RuntimeError("a bug in deciding one job")
        return await decide(item)

    worker._decide = crashes_for_one  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        await worker.run_once()
        await worker.wait_in_flight()
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "automation.job_error"
    ]
    async with live.runtime.db.session() as session:
        states = {
            j.id: (j.state, j.attempts)
            for j in (await session.scalars(select(AutomationJob))).all()
        }
    assert states.pop(broken) == ("pending", 1)  # leased: runs again after its lease
    assert set(states.values()) == {("done", 1)}


async def test_a_claim_leases_and_reads_its_jobs_in_one_statement(live):
    from sqlalchemy import event

    _, worker, jobs = await _customers_asking(live, 2)
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(args[2].split()))

    engine = live.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with live.runtime.db.session() as session:
            claimed = await worker._claim(session)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sorted(job.id for job in claimed) == sorted(job.id for job in jobs)
    assert all(job.lease_owner == worker.owner and job.attempts == 1 for job in claimed)
    on_jobs = [s for s in seen if "automation_jobs" in s]
    assert len(on_jobs) == 3  # the due jobs, each conversation's oldest, the lease
    assert on_jobs[-1].startswith("UPDATE automation_jobs") and "RETURNING" in on_jobs[-1]
