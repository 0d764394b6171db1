"""Shared set-up of the automation tests: an inbox on the simulator with the demo's rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.helpers import PHONE_NUMBER_ID, create_inbox, eventually, settle
from wadesk.audit.actions import Actor
from wadesk.automation.actions import do_create_rule
from wadesk.automation.demo import setup_order_status_demo
from wadesk.automation.models import AutomationJob, Integration
from wadesk.conversations.models import Message

CUSTOMER = "5511987654321"


async def sim_inbox(live: Any) -> dict[str, Any]:
    """An inbox the embedded simulator knows (its registration follows an event)."""
    inbox = await create_inbox(live)

    async def registered() -> bool:
        try:
            live.simulator.number(PHONE_NUMBER_ID)
        except (KeyError, ValueError):
            return False
        return True

    await eventually(registered)
    return inbox


async def add_rule(live: Any, inbox_id: int, **data: Any) -> int:
    """A rule created as an admin would (audited); returns its id."""
    async with live.runtime.db.session() as session:
        rule = await do_create_rule(
            session, actor=Actor.system("tests"), inbox_id=inbox_id, data=data
        )
        return int(rule.id)


async def demo_inbox(live: Any) -> dict[str, Any]:
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        await setup_order_status_demo(session, live.runtime.settings, inbox["id"])
        # A loaded CI machine: the demo API runs in the same process as everything else.
        integration = await session.scalar(select(Integration))
        integration.timeout_seconds = 15.0
    return inbox


async def customer_says(
    live: Any, text: str, wa_id: str = CUSTOMER, name: str = "Ana Souza"
) -> str:
    """The customer writes; returns once the message is stored (its job queued)."""
    wamid = await live.simulator.customer_sends(
        PHONE_NUMBER_ID, wa_id, name, {"type": "text", "text": text}
    )
    await settle(live)
    return str(wamid)


def received(live: Any, wa_id: str = CUSTOMER) -> list[str]:
    """Texts the simulator (the customer's phone) received, oldest first."""
    return [
        s["body"]["text"]["body"]
        for s in live.simulator.outbound(PHONE_NUMBER_ID)
        if s["to"] == wa_id and s["body"].get("type") == "text"
    ]


async def wait_received(live: Any, count: int, wa_id: str = CUSTOMER) -> list[str]:
    async def enough() -> list[str] | None:
        texts = received(live, wa_id)
        return texts if len(texts) >= count else None

    result: list[str] = await eventually(enough, timeout=15)
    return result


async def jobs_done(live: Any) -> bool:
    async with live.runtime.db.session() as session:
        pending = (
            await session.scalars(select(AutomationJob.id).where(AutomationJob.state == "pending"))
        ).all()
        return not pending


async def settle_jobs(live: Any) -> None:
    await eventually(lambda: jobs_done(live), timeout=15)


async def conversation_messages(live: Any) -> list[Message]:
    async with live.runtime.db.session() as session:
        return list((await session.scalars(select(Message).order_by(Message.id))).all())
