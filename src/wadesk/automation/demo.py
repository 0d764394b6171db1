"""The order-status demo: a small orders API served by wadesk itself (only with the embedded
simulator, i.e. ``make run``'s demo) and the integration + rule that answer from it.

The API stands for "the company's database": a sample table of orders, looked up by number,
protected by a key kept encrypted in the integration (as a real one would be).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor
from wadesk.automation.actions import (
    do_create_faq,
    do_create_integration,
    do_create_rule,
    do_set_inbox_automation,
)
from wadesk.automation.models import AutomationRule, Integration
from wadesk.config import Settings
from wadesk.crypto import keyed_hash

KEY_HEADER = "X-Demo-Key"
ORDERS: dict[str, dict[str, Any]] = {
    "12345": {
        "status": "on its way",
        "carrier": "DHL Express",
        "progress": "left the Leipzig hub, out for delivery tomorrow morning",
        "eta": "tomorrow before 12:00",
    },
    "23456": {
        "status": "delivered",
        "carrier": "UPS",
        "progress": "delivered to the front desk, signed by M. Rossi",
        "eta": "delivered yesterday at 14:02",
    },
    "34567": {
        "status": "being packed",
        "carrier": "DPD",
        "progress": "the label is printed; pick-up by DPD this afternoon",
        "eta": "in 2 to 3 working days",
    },
    "45678": {
        "status": "held at customs",
        "carrier": "FedEx",
        "progress": "waiting for customs clearance in Paris CDG",
        "eta": "in 4 to 6 working days",
    },
}
ORDER_RULE = "Order status (demo)"
HANDOFF_RULE = "Talk to a person"


def demo_key() -> str:
    return keyed_hash("orders", "demo-orders-api")[:32]


router = APIRouter(include_in_schema=False)


@router.get("/demo/orders/{number}")
async def demo_order(
    number: str, x_demo_key: str = Header(default="", alias=KEY_HEADER)
) -> JSONResponse:
    if not hmac.compare_digest(x_demo_key, demo_key()):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    order = ORDERS.get(number.strip())
    if order is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse({"number": number, **order})


def order_rule_actions() -> list[dict[str, Any]]:
    return [
        {
            "type": "ask",
            "capture": "order",
            "pattern": r"\b\d{4,10}\b",
            "text": "Sure {{contact.first_name|}} — what is your order number?",
            "timeout_minutes": 30,
        },
        {"type": "add_label", "label": "orders"},
        {
            "type": "integration",
            "integration": "orders",
            "reply": "📦 Order {{result.number}} is {{result.status}}.\n"
            "🚚 {{result.carrier}}: {{result.progress}}.\n"
            "📅 Expected: {{result.eta}}.",
            "not_found_reply": "I could not find an order {{match.order}}. A colleague will"
            " check it and get back to you here.",
            "fallback_reply": "Our order system does not answer right now. A colleague will"
            " look up order {{match.order}} for you.",
            "note": "Order lookup",
        },
    ]


ORDER_KEYWORDS = [
    "order",
    "order status",
    "where is my order",
    "track my order",
    "tracking",
    "parcel",
    "package",
    "commande",
    "ou est ma commande",
    "pedido",
    "donde esta mi pedido",
    "bestellung",
    "ordine",
]


async def setup_order_status_demo(session: AsyncSession, settings: Settings, inbox_id: int) -> None:
    """The integration and rules of the demo (idempotent)."""
    actor = Actor.system("demo-setup")
    if await session.scalar(select(Integration.id).where(Integration.name == "orders")) is None:
        await do_create_integration(
            session,
            actor=actor,
            data={
                "name": "orders",
                "url": f"{settings.base_url.rstrip('/')}/demo/orders/{{{{match.order}}}}",
                "method": "GET",
                "secret_header": KEY_HEADER,
                "secret": demo_key(),
                "timeout_seconds": 3.0,
            },
        )
    names = set(
        (
            await session.scalars(
                select(AutomationRule.name).where(AutomationRule.inbox_id == inbox_id)
            )
        ).all()
    )
    if HANDOFF_RULE not in names:
        await do_create_rule(
            session,
            actor=actor,
            inbox_id=inbox_id,
            data={
                "name": HANDOFF_RULE,
                "conditions": {
                    "keywords": ["human", "agent", "person", "talk to someone", "humain", "persona"]
                },
                "actions": [
                    {"type": "reply", "text": "Of course — a colleague will answer you here."},
                    {"type": "handoff", "note": "The customer asked for a person."},
                ],
            },
        )
    if ORDER_RULE not in names:
        await do_create_rule(
            session,
            actor=actor,
            inbox_id=inbox_id,
            data={
                "name": ORDER_RULE,
                "conditions": {"keywords": ORDER_KEYWORDS},
                "actions": order_rule_actions(),
            },
        )


DEMO_FAQ = (
    (
        "What are your opening hours?",
        ["When are you open?", "what time do you open", "Qual é o horário de funcionamento?"],
        "We answer Monday to Friday, 9:00 to 18:00. Write any time: we read everything.",
    ),
    (
        "How much is shipping?",
        ["shipping cost", "do you charge for delivery", "Quanto custa o frete?"],
        "Shipping is free above R$ 200; below that it is R$ 19.90 anywhere in Brazil.",
    ),
    (
        "Can I return a product?",
        ["how do I return an item", "return policy", "Como faço uma devolução?"],
        "Yes: within 30 days, unused, in its box. Send us the order number and we will"
        " send you a return label.",
    ),
)


async def setup_faq_demo(session: AsyncSession, inbox_id: int) -> None:
    """A few questions the FAQ bot answers in the demo (the simulator's phone page)."""
    actor = Actor.system("demo-setup")
    for question, alternatives, answer in DEMO_FAQ:
        await do_create_faq(
            session,
            actor=actor,
            inbox_id=inbox_id,
            data={"question": question, "alternatives": alternatives, "answer": answer},
        )
    await do_set_inbox_automation(
        session, actor=actor, inbox_id=inbox_id, data={"faq_enabled": True}
    )
