"""Guided flows and list replies, end to end: the signed webhook, the automation worker, the
outbox and the embedded simulator (the customer's phone), plus the API, the admin pages and
the agent's side panel."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any
from unittest.mock import ANY

from sqlalchemy import select, update

from tests.automation.conftest import (
    CUSTOMER,
    conversation_messages,
    customer_says,
    received,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import (
    PHONE_NUMBER_ID,
    auth,
    create_user,
    eventually,
    logged_events,
    settle,
)
from tests.web.client import csrf_of, sign_in
from wadesk.audit.models import AuditEvent
from wadesk.automation.engine import compile_rules, run_rule
from wadesk.automation.flows import FlowSpec, advance, validate_definition
from wadesk.automation.models import Flow, FlowState
from wadesk.automation.waiting import sweep_waiting
from wadesk.db import utcnow
from wadesk.realtime.models import EventRecord

OTHER = "5511900000002"
ORDERS_ROWS = [
    {"id": "track", "title": "Track my order", "description": "Where is my parcel?"},
    {"id": "return", "title": "Return an item"},
]
DEFINITION: dict[str, Any] = {
    "start": "menu",
    "keywords": ["menu"],
    "steps": {
        "menu": {
            "text": "Hi {{contact.first_name|there}}! How can we help?",
            "buttons": ["Orders", "Opening hours", "Talk to a person"],
            "on": {
                "Orders": {"goto": "orders"},
                "Opening hours": {"answer": "We open at 9.", "keywords": ["horario"]},
                "Talk to a person": {"handoff": "Asked for a person from the menu"},
            },
        },
        "orders": {
            "text": "What about your order?",
            "list": {
                "button": "Choose",
                "sections": [{"title": "Orders", "rows": ORDERS_ROWS}],
            },
            "on": {
                "track": {"answer": "It ships in 2 days."},
                "return": {"goto": "ask_number"},
            },
        },
        "ask_number": {
            "text": "Your order number?",
            "on": {"*": {"answer": "Thanks, return of {{message.text}} noted."}},
        },
    },
}


# ---------------------------------------------------------------- helpers


async def _flow(
    live: Any, token: str, inbox_id: int, definition: Any = None, name: str = "Orders"
) -> Any:
    return await live.client.post(
        "/api/v1/automation/flows",
        json={
            "inbox_id": inbox_id,
            "name": name,
            "definition": DEFINITION if definition is None else definition,
        },
        headers=auth(token),
    )


async def _setup(live: Any) -> tuple[dict[str, Any], int, str, int]:
    inbox = await sim_inbox(live)
    user_id, token = await create_user(live, email="boss@example.com")
    created = await _flow(live, token, inbox["id"])
    assert created.status_code == 201, created.text
    return inbox, user_id, token, int(created.json()["id"])


def _sent(live: Any, wa_id: str = CUSTOMER) -> list[dict[str, Any]]:
    """Every message the customer's phone received (text or interactive), oldest first."""
    return [s["body"] for s in live.simulator.outbound(PHONE_NUMBER_ID) if s["to"] == wa_id]


async def _wait_sent(live: Any, count: int, wa_id: str = CUSTOMER) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        sent = _sent(live, wa_id)
        return sent if len(sent) >= count else None

    result: list[dict[str, Any]] = await eventually(enough, timeout=15)
    return result


async def _tap(live: Any, button: dict[str, Any], wa_id: str = CUSTOMER) -> None:
    reply = button["reply"]
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID,
        wa_id,
        "Ana Souza",
        {"type": "interactive", "button_reply": {"id": reply["id"], "title": reply["title"]}},
    )
    await settle(live)


async def _choose(live: Any, row: dict[str, Any], wa_id: str = CUSTOMER) -> None:
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID, wa_id, "Ana Souza", {"type": "interactive", "list_reply": row}
    )
    await settle(live)


def _button(message: dict[str, Any], title: str) -> dict[str, Any]:
    buttons = message["interactive"]["action"]["buttons"]
    return next(b for b in buttons if b["reply"]["title"] == title)


async def _states(live: Any) -> list[FlowState]:
    async with live.runtime.db.session() as session:
        return list((await session.scalars(select(FlowState))).all())


async def _counters(live: Any, flow_id: int) -> dict[str, int]:
    async with live.runtime.db.session() as session:
        flow = await session.get(Flow, flow_id)
        assert flow is not None
        return {
            "started": flow.started,
            "completed": flow.completed,
            "handed_off": flow.handed_off,
            "timed_out": flow.timed_out,
        }


async def _bot_messages(live: Any) -> list[Any]:
    """What automation wrote to customers (stored before it is sent)."""
    return [
        m for m in await conversation_messages(live) if m.direction == "out" and m.type != "note"
    ]


async def _notes(live: Any) -> list[str]:
    return [m.text or "" for m in await conversation_messages(live) if m.type == "note"]


# ---------------------------------------------------------------- end to end


async def test_menu_buttons_then_a_list_choice_then_an_answer(live):
    _, _, _, flow_id = await _setup(live)
    await customer_says(live, "menu")
    (menu,) = await _wait_sent(live, 1)
    assert menu["type"] == "interactive" and menu["interactive"]["type"] == "button"
    assert menu["interactive"]["body"]["text"] == "Hi Ana! How can we help?"
    orders = _button(menu, "Orders")
    assert orders["reply"]["id"] == f"flow:{flow_id}:menu:1"
    await settle_jobs(live)
    (state,) = await _states(live)
    assert (state.flow_id, state.version, state.step, state.retries) == (flow_id, 1, "menu", 0)
    # The agent sees where the customer is.
    boss = await sign_in(live, "boss@example.com")
    page = await boss.get(f"/inbox/c/{state.conversation_id}")
    assert "In flow “Orders” — step “menu” (v1)" in page.text
    await boss.aclose()
    # ... and follows it live: the step's change is an event that refreshes the panel.
    await logged_events(live)
    async with live.runtime.db.session() as session:
        flow_events = (
            await session.scalars(
                select(EventRecord.payload).where(EventRecord.kind == "conversation.updated")
            )
        ).all()
    assert {"conversation_id": state.conversation_id, "inbox_id": ANY, "changes": ["flow"]} in [
        dict(p) for p in flow_events
    ]

    await _tap(live, orders)
    listed = (await _wait_sent(live, 2))[1]["interactive"]
    boss = await sign_in(live, "boss@example.com")
    thread = await boss.get(f"/inbox/c/{state.conversation_id}")
    assert "☰ Choose" in thread.text and "Track my order" in thread.text
    await boss.aclose()
    assert listed["type"] == "list" and listed["body"]["text"] == "What about your order?"
    assert listed["action"]["button"] == "Choose"
    assert listed["action"]["sections"] == [{"title": "Orders", "rows": ORDERS_ROWS}]
    await settle_jobs(live)
    assert (await _states(live))[0].step == "orders"

    await _choose(live, {"id": "track", "title": "Track my order"})
    assert (await wait_received(live, 1)) == ["It ships in 2 days."]
    await settle_jobs(live)
    assert await _states(live) == []
    assert await _counters(live, flow_id) == {
        "started": 1,
        "completed": 1,
        "handed_off": 0,
        "timed_out": 0,
    }
    bot = [m for m in await conversation_messages(live) if m.direction == "out"]
    assert [m.type for m in bot] == ["interactive", "interactive", "text"]
    assert all(m.content["automation"]["kind"] == "flow" for m in bot)
    assert bot[0].content["automation"]["flow_id"] == flow_id
    inbound = [m for m in await conversation_messages(live) if m.direction == "in"]
    assert inbound[-1].text == "Track my order"
    assert inbound[-1].content["interactive_type"] == "list_reply"
    # The flow is over: "menu" starts it again.
    await customer_says(live, "menu")
    await _wait_sent(live, 4)
    await settle_jobs(live)
    assert (await _counters(live, flow_id))["started"] == 2


async def test_a_rule_starts_the_flow_and_typed_answers_choose(live):
    inbox, _, token, flow_id = await _setup(live)
    rule = await live.client.post(
        f"/api/v1/automation/inboxes/{inbox['id']}/rules",
        json={
            "name": "Help",
            "conditions": {"keywords": ["help"]},
            "actions": [
                {"type": "add_label", "label": "guided"},
                {"type": "start_flow", "flow": "orders"},
                {"type": "reply", "text": "never sent: the flow took over"},
            ],
        },
        headers=auth(token),
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["actions"][1] == {"type": "start_flow", "flow": "orders", "flow_id": flow_id}
    await customer_says(live, "I need help")
    await _wait_sent(live, 1)
    await settle_jobs(live)
    # A typed option number, then a free answer at a text step ("*").
    await customer_says(live, "1")
    await _wait_sent(live, 2)
    await settle_jobs(live)
    await customer_says(live, "I want to return an item please")
    assert (await wait_received(live, 1)) == ["Your order number?"]
    await settle_jobs(live)
    assert (await _states(live))[0].step == "ask_number"
    await customer_says(live, "A-778")
    assert (await wait_received(live, 2))[1] == "Thanks, return of A-778 noted."
    await settle_jobs(live)
    assert "never sent: the flow took over" not in received(live)
    assert (await _counters(live, flow_id))["completed"] == 1
    # A second customer answers the menu with a choice's keyword.
    await customer_says(live, "help", wa_id=OTHER, name="Bob")
    await _wait_sent(live, 1, OTHER)
    await settle_jobs(live)
    await customer_says(live, "horário?", wa_id=OTHER, name="Bob")
    assert (await wait_received(live, 1, OTHER)) == ["We open at 9."]


async def test_talk_to_a_person_always_works(live):
    _, _, _, flow_id = await _setup(live)
    await customer_says(live, "menu")
    menu = (await _wait_sent(live, 1))[0]
    await settle_jobs(live)
    await _tap(live, _button(menu, "Orders"))
    await _wait_sent(live, 2)
    await settle_jobs(live)
    # At the list step, in Portuguese.
    await customer_says(live, "quero falar com atendente")
    assert (await wait_received(live, 1)) == [
        "Thanks — a colleague will continue this conversation shortly."
    ]
    await settle_jobs(live)
    assert await _states(live) == []
    notes = await _notes(live)
    assert len(notes) == 1 and "asked for a person" in notes[0] and "“orders”" in notes[0]
    # Another customer, at the first step, one Spanish word.
    await customer_says(live, "menu", wa_id=OTHER, name="Bob")
    await _wait_sent(live, 1, OTHER)
    await settle_jobs(live)
    await customer_says(live, "Persona!", wa_id=OTHER, name="Bob")
    await wait_received(live, 1, OTHER)
    await settle_jobs(live)
    assert await _states(live) == []
    counters = await _counters(live, flow_id)
    assert counters["started"] == 2 and counters["handed_off"] == 2
    # The menu's own "Talk to a person" button uses its transition's note.
    await customer_says(live, "menu", wa_id="5511900000003", name="Cy")
    menu = (await _wait_sent(live, 1, "5511900000003"))[0]
    await settle_jobs(live)
    await _tap(live, _button(menu, "Talk to a person"), wa_id="5511900000003")
    await wait_received(live, 1, "5511900000003")
    await settle_jobs(live)
    assert any("Asked for a person from the menu" in n for n in await _notes(live))


async def test_an_answer_not_understood_is_asked_again_then_handed_off(live):
    _, _, _, flow_id = await _setup(live)
    await customer_says(live, "menu")
    await _wait_sent(live, 1)
    await settle_jobs(live)
    await customer_says(live, "blue bananas")
    again = (await _wait_sent(live, 2))[1]["interactive"]
    assert again["type"] == "button"
    assert again["body"]["text"].startswith("Sorry, I did not get that.")
    assert "How can we help?" in again["body"]["text"]
    await settle_jobs(live)
    assert (await _states(live))[0].retries == 1
    await customer_says(live, "purple elephants")
    assert (await wait_received(live, 1)) == [
        "Thanks — a colleague will continue this conversation shortly."
    ]
    await settle_jobs(live)
    assert await _states(live) == []
    notes = await _notes(live)
    assert len(notes) == 1 and "not understood" in notes[0] and "purple elephants" in notes[0]
    assert (await _counters(live, flow_id))["handed_off"] == 1


async def test_a_silent_customer_times_out_and_rules_apply_again(live):
    inbox, _, token, flow_id = await _setup(live)
    rule = await live.client.post(
        f"/api/v1/automation/inboxes/{inbox['id']}/rules",
        json={
            "name": "Orders",
            "conditions": {"keywords": ["orders"]},
            "actions": [{"type": "reply", "text": "Rule: see our orders page."}],
        },
        headers=auth(token),
    )
    assert rule.status_code == 201
    for wa_id in (CUSTOMER, OTHER):
        await customer_says(live, "menu", wa_id=wa_id, name="Ana Souza")
        await _wait_sent(live, 1, wa_id)
        await settle_jobs(live)
    assert len(await _states(live)) == 2
    async with live.runtime.db.session() as session:
        await session.execute(update(FlowState).values(expires_at=utcnow() - timedelta(minutes=1)))
    # The next message of the first customer: the flow is over, the rule answers.
    await customer_says(live, "Orders")
    assert (await wait_received(live, 1)) == ["Rule: see our orders page."]
    await settle_jobs(live)
    # The second customer never writes again: the sweep ends and counts it.
    await sweep_waiting(live.runtime.db)
    assert await _states(live) == []
    counters = await _counters(live, flow_id)
    assert counters["started"] == 2 and counters["timed_out"] == 2


async def test_a_customer_mid_flow_keeps_the_version_they_started(live):
    _, _, token, flow_id = await _setup(live)
    await customer_says(live, "menu")
    old_menu = (await _wait_sent(live, 1))[0]
    await settle_jobs(live)
    changed = copy.deepcopy(DEFINITION)
    changed["steps"]["menu"]["on"]["Opening hours"]["answer"] = "From now on we open at 8."
    patched = await live.client.patch(
        f"/api/v1/automation/flows/{flow_id}", json={"definition": changed}, headers=auth(token)
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["versions"] == [1, 2]
    assert patched.json()["in_flow"] == 1
    # Saving the same definition again makes no new version.
    same = await live.client.patch(
        f"/api/v1/automation/flows/{flow_id}", json={"definition": changed}, headers=auth(token)
    )
    assert same.json()["version"] == 2
    await _tap(live, _button(old_menu, "Opening hours"))
    assert (await wait_received(live, 1)) == ["We open at 9."]
    await settle_jobs(live)
    await customer_says(live, "menu", wa_id=OTHER, name="Bob")
    new_menu = (await _wait_sent(live, 1, OTHER))[0]
    await settle_jobs(live)
    assert (await _states(live))[0].version == 2
    await _tap(live, _button(new_menu, "Opening hours"), wa_id=OTHER)
    assert (await wait_received(live, 1, OTHER)) == ["From now on we open at 8."]


async def test_a_conversation_a_person_took_over_is_left_alone(live):
    _, user_id, token, flow_id = await _setup(live)
    await customer_says(live, "menu")
    menu = (await _wait_sent(live, 1))[0]
    await settle_jobs(live)
    conversation_id = (await _states(live))[0].conversation_id
    assigned = await live.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"assignee_id": user_id},
        headers=auth(token),
    )
    assert assigned.status_code == 200, assigned.text
    await _tap(live, _button(menu, "Orders"))
    await customer_says(live, "menu")
    await settle_jobs(live)
    assert len(await _bot_messages(live)) == 1  # nothing after the first menu
    assert await _states(live) == []
    assert (await _counters(live, flow_id))["started"] == 1


async def test_disabling_a_flow_takes_customers_out_of_it(live):
    _, _, token, flow_id = await _setup(live)
    await customer_says(live, "menu")
    await _wait_sent(live, 1)
    await settle_jobs(live)
    off = await live.client.patch(
        f"/api/v1/automation/flows/{flow_id}", json={"enabled": False}, headers=auth(token)
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert await _states(live) == []
    await customer_says(live, "Orders")
    await settle_jobs(live)
    assert len(await _bot_messages(live)) == 1


# ---------------------------------------------------------------- list replies in rules


async def test_a_rule_sends_a_list_and_a_choice_matches_the_next_rule(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    for body in (
        {
            "name": "Topics",
            "conditions": {"keywords": ["topics"]},
            "actions": [
                {
                    "type": "list",
                    "text": "Hi {{contact.first_name}}, pick a topic",
                    "button": "Topics",
                    "sections": [
                        {"title": "Shop", "rows": [{"id": "ship", "title": "Shipping"}]},
                        {
                            "title": "Account",
                            "rows": [{"title": "Password", "description": "Reset it"}],
                        },
                    ],
                }
            ],
        },
        {
            "name": "Shipping",
            "conditions": {"keywords": ["shipping"]},
            "actions": [{"type": "reply", "text": "We ship in 2 days."}],
        },
    ):
        created = await live.client.post(
            f"/api/v1/automation/inboxes/{inbox['id']}/rules", json=body, headers=auth(token)
        )
        assert created.status_code == 201, created.text
    await customer_says(live, "topics")
    (listed,) = await _wait_sent(live, 1)
    obj = listed["interactive"]
    assert obj["type"] == "list" and obj["body"]["text"] == "Hi Ana, pick a topic"
    assert obj["action"]["sections"][1]["rows"] == [
        {"id": "Password", "title": "Password", "description": "Reset it"}
    ]
    await _choose(live, {"id": "ship", "title": "Shipping"})
    assert (await wait_received(live, 1)) == ["We ship in 2 days."]


async def test_run_rule_turns_a_list_into_an_interactive_message():
    class Row:
        id, name, trigger, position, enabled, after_handoff, inbox_id = (
            3,
            "list",
            "message",
            0,
            1,
            0,
            1,
        )
        conditions: dict[str, Any] = {}
        actions = [
            {
                "type": "list",
                "text": "Hi {{contact.first_name}}",
                "button": "Choose",
                "sections": [{"rows": [{"id": "a", "title": "A"}]}],
            }
        ]

    effects = await run_rule(
        compile_rules([Row()]).by_id[3],
        start=0,
        context={"contact": {"first_name": "Ana"}},
        http=None,  # type: ignore[arg-type]
        integrations={},
        quick_replies={},
    )
    (message,) = effects.sends
    assert message.interactive(3) == {  # type: ignore[union-attr]
        "type": "list",
        "body": {"text": "Hi Ana"},
        "action": {"button": "Choose", "sections": [{"rows": [{"id": "a", "title": "A"}]}]},
    }


# ---------------------------------------------------------------- validation


def _bad(**changes: Any) -> dict[str, Any]:
    definition = copy.deepcopy(DEFINITION)
    for path, value in changes.items():
        target: Any = definition
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is None:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return definition


async def test_invalid_flows_and_lists_are_refused_naming_the_field(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    many_rows = [{"id": f"r{n}", "title": f"Row {n}"} for n in range(11)]
    cases: list[tuple[Any, str]] = [
        ("not an object", "definition"),
        (_bad(start=None), "start"),
        (_bad(start="nowhere"), "start: no step named 'nowhere'"),
        (_bad(steps__menu__on__Orders={"goto": "ordrs"}), "steps.menu.on.Orders.goto"),
        (_bad(steps__menu__buttons=["a", "b", "c", "d"]), "steps.menu.buttons"),
        (_bad(steps__menu__buttons=["Orders", "x" * 21]), "20 characters"),
        (_bad(steps__menu__on__Orders=None), "no transition for the choice 'Orders'"),
        (
            _bad(steps__orders__list__sections=[{"title": "A", "rows": many_rows}]),
            "at most 10 rows",
        ),
        (
            _bad(steps__orders__list__sections=[{"rows": [{"id": "track", "title": "x" * 25}]}]),
            "24 characters",
        ),
        (_bad(steps__orders__list__button="x" * 21), "steps.orders.list.button"),
        (
            _bad(steps__orders__on__track={"goto": "menu", "handoff": "x"}),
            "steps.orders.on.track",
        ),
        (_bad(steps__orders__on__track={}), "steps.orders.on.track"),
        (_bad(timeout_minutes=0), "timeout_minutes"),
        (_bad(colour="blue"), "colour"),
        (_bad(steps__menu__on={}), "steps.menu.on"),
        (_bad(steps__ask_number__text=""), "steps.ask_number.text"),
    ]
    for definition, field in cases:
        response = await _flow(live, token, inbox["id"], definition)
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert error["code"] in ("invalid_flow", "invalid_request"), error
        assert field in error["message"], (field, error["message"])
    missing_inbox = await live.client.post(
        "/api/v1/automation/flows",
        json={"name": "x", "definition": DEFINITION},
        headers=auth(token),
    )
    assert missing_inbox.status_code == 422
    assert (await _flow(live, token, inbox["id"])).status_code == 201
    taken = await _flow(live, token, inbox["id"], name="ORDERS")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "name_taken"
    rules_url = f"/api/v1/automation/inboxes/{inbox['id']}/rules"
    unknown = await live.client.post(
        rules_url,
        json={"name": "s", "actions": [{"type": "start_flow", "flow": "Nope"}]},
        headers=auth(token),
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_flow"
    assert "Nope" in unknown.json()["error"]["message"]
    rows = [{"id": "a", "title": "A"}]
    bad_lists: list[tuple[dict[str, Any], str]] = [
        ({"button": "x" * 21, "sections": [{"rows": rows}]}, "20 characters"),
        ({"button": "B", "sections": []}, "sections"),
        ({"button": "B", "sections": [{"rows": rows}, {"rows": [{"title": "C"}]}]}, "title"),
        ({"button": "B", "sections": [{"title": "x" * 25, "rows": rows}]}, "24 characters"),
        (
            {"button": "B", "sections": [{"rows": [{"title": "A", "description": "d" * 73}]}]},
            "72 characters",
        ),
        ({"button": "B", "sections": [{"rows": [{"title": "A"}, {"title": "a"}]}]}, "differ"),
        ({"button": "B", "sections": [{"rows": many_rows}]}, "at most 10 rows"),
    ]
    for action, words in bad_lists:
        response = await live.client.post(
            rules_url,
            json={"name": "l", "actions": [{"type": "list", "text": "Pick", **action}]},
            headers=auth(token),
        )
        assert response.status_code == 422, (action, response.text)
        assert words in response.json()["error"]["message"], response.json()


def test_advance_without_retries_can_just_end_and_a_star_takes_anything():
    definition = validate_definition(
        {
            "start": "q",
            "retries": 0,
            "on_unrecognised": "end",
            "steps": {"q": {"text": "Yes or no?", "on": {"yes": {"answer": "Good."}}}},
        }
    )
    spec = FlowSpec(1, "Q", 1, definition)
    assert advance(spec, "q", 0, "maybe", None, {}).outcome == "ended"
    assert advance(spec, "q", 0, "YES!", None, {}).sends == ["Good."]
    definition["steps"]["q"]["on"]["*"] = {"handoff": ""}
    turn = advance(FlowSpec(1, "Q", 1, definition), "q", 0, "maybe", None, {})
    assert turn.outcome == "handed_off" and "chose “*”" in (turn.handoff_note or "")


# ---------------------------------------------------------------- API, audit, admin pages


async def test_flows_api_crud_is_audited_and_for_managers(live):
    inbox, _, token, flow_id = await _setup(live)
    listed = await live.client.get(
        "/api/v1/automation/flows", params={"inbox_id": inbox["id"]}, headers=auth(token)
    )
    assert [f["id"] for f in listed.json()["items"]] == [flow_id]
    got = await live.client.get(f"/api/v1/automation/flows/{flow_id}", headers=auth(token))
    assert got.status_code == 200 and got.json()["definition"]["start"] == "menu"
    assert got.json()["definition"]["timeout_minutes"] == 30
    renamed = await live.client.patch(
        f"/api/v1/automation/flows/{flow_id}", json={"name": "Orders v2"}, headers=auth(token)
    )
    assert renamed.json()["name"] == "Orders v2" and renamed.json()["version"] == 1
    moved = await live.client.patch(
        f"/api/v1/automation/flows/{flow_id}", json={"inbox_id": 999}, headers=auth(token)
    )
    assert moved.status_code == 422
    _, agent = await create_user(
        live, email="agent@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    refused = await _flow(live, agent, inbox["id"], name="Mine")
    assert refused.status_code == 403
    assert (
        await live.client.delete(f"/api/v1/automation/flows/{flow_id}", headers=auth(agent))
    ).status_code == 403
    deleted = await live.client.delete(f"/api/v1/automation/flows/{flow_id}", headers=auth(token))
    assert deleted.status_code == 204
    gone = await live.client.get(f"/api/v1/automation/flows/{flow_id}", headers=auth(token))
    assert gone.status_code == 404
    async with live.runtime.db.session() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_type == "automation_flow")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [e.action for e in events] == [
        "automation_flow.create",
        "automation_flow.update",
        "automation_flow.delete",
    ]
    assert all(e.target_id == str(flow_id) for e in events)
    assert events[1].details["name"] == {"before": "Orders", "after": "Orders v2"}


async def test_admin_pages_create_validate_preview_and_save_versions(live):
    inbox = await sim_inbox(live)
    await create_user(live, email="boss@example.com")
    browser = await sign_in(live, "boss@example.com")
    index = await browser.get("/admin/automation")
    assert 'href="/admin/automation/flows"' in index.text
    page = await browser.get("/admin/automation/flows")
    assert page.status_code == 200 and "New flow" in page.text
    csrf = csrf_of(page.text)
    broken = await browser.post(
        "/admin/automation/flows",
        data={
            "csrf_token": csrf,
            "name": "Orders",
            "inbox_id": str(inbox["id"]),
            "definition": '{"start": "menu", "steps": {"menu": {"text": "Hi", "on": '
            '{"x": {"goto": "nowhere"}}}}}',
        },
    )
    assert broken.status_code == 422
    assert "steps.menu.on.x.goto: no step named &#39;nowhere&#39;" in broken.text
    no_csrf = await browser.post(
        "/admin/automation/flows",
        data={"name": "Orders", "inbox_id": str(inbox["id"]), "definition": "{}"},
    )
    assert no_csrf.status_code in (400, 403)
    created = await browser.post(
        "/admin/automation/flows",
        data={
            "csrf_token": csrf,
            "name": "Orders",
            "inbox_id": str(inbox["id"]),
            "definition": json.dumps(DEFINITION),
        },
    )
    assert created.status_code == 303, created.text
    url = created.headers["location"].split("?")[0]
    flow_page = await browser.get(url)
    assert flow_page.status_code == 200
    for shown in ("menu", "ask_number", "Track my order", "List “Choose”", "goes to orders"):
        assert shown in flow_page.text, shown
    assert "hands off to a person (Asked for a person from the menu)" in flow_page.text
    changed = copy.deepcopy(DEFINITION)
    changed["steps"]["thanks"] = {"text": "Anything else?", "on": {"no": {"answer": "Bye"}}}
    changed["steps"]["ask_number"]["on"]["*"] = {"goto": "thanks"}
    previewed = await browser.post(
        url,
        data={
            "csrf_token": csrf,
            "name": "Orders",
            "definition": json.dumps(changed),
            "enabled": "1",
            "preview": "1",
        },
    )
    assert previewed.status_code == 200 and "Preview (not saved)" in previewed.text
    assert "Anything else?" in previewed.text
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(Flow.version))) == 1
    invalid = await browser.post(
        url,
        data={"csrf_token": csrf, "name": "Orders", "definition": "{not json", "enabled": "1"},
    )
    assert invalid.status_code == 422 and "not valid JSON" in invalid.text
    assert "{not json" in invalid.text
    saved = await browser.post(
        url,
        data={
            "csrf_token": csrf,
            "name": "Orders",
            "definition": json.dumps(changed),
            "enabled": "1",
        },
    )
    assert saved.status_code == 303
    after = await browser.get(url)
    assert "v2" in after.text and "Anything else?" in after.text
    deleted = await browser.post(f"{url}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(Flow.id))) is None
    await browser.aclose()
