"""Rules with a detected-language condition, an assign_team action and WhatsApp reply buttons:
validation, and end to end through the signed webhook, the worker and the embedded simulator."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.automation.conftest import (
    CUSTOMER,
    conversation_messages,
    customer_says,
    received,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import PHONE_NUMBER_ID, SYSTEM, auth, create_user, eventually, settle
from wadesk.accounts.models import User
from wadesk.audit.models import AuditEvent
from wadesk.automation.engine import Facts, compile_rules, evaluate, run_rule
from wadesk.conversations.models import Conversation
from wadesk.routing.actions import do_set_availability
from wadesk.routing.models import ConversationRouting, QueueEntry
from wadesk.teams.actions import do_delete_team, do_set_team_member
from wadesk.teams.models import Team

OTHER = "5511900000002"


async def _rule(live: Any, token: str, inbox_id: int, body: dict[str, Any]) -> Any:
    return await live.client.post(
        f"/api/v1/automation/inboxes/{inbox_id}/rules", json=body, headers=auth(token)
    )


async def _team(live: Any, token: str, name: str) -> int:
    created = await live.client.post("/api/v1/teams", json={"name": name}, headers=auth(token))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def test_validation_refuses_bad_languages_teams_and_buttons(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    reply = [{"type": "reply", "text": "x"}]
    bad_languages: list[Any] = [[], ["xx"], ["english"], "pt", ["pt", 3], ["pt"] * 21]
    for value in bad_languages:
        response = await _rule(
            live,
            token,
            inbox["id"],
            {"name": "lang", "conditions": {"language": value}, "actions": reply},
        )
        assert response.status_code == 422, (value, response.text)
        assert response.json()["error"]["code"] == "invalid_conditions"
        assert "language" in response.json()["error"]["message"]
    unknown = await _rule(
        live,
        token,
        inbox["id"],
        {"name": "team", "actions": [{"type": "assign_team", "team": "Nobody"}]},
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_team"
    assert "Nobody" in unknown.json()["error"]["message"]
    bad_buttons: list[dict[str, Any]] = [
        {"type": "buttons", "text": "Pick", "buttons": []},
        {"type": "buttons", "text": "Pick", "buttons": ["a", "b", "c", "d"]},
        {"type": "buttons", "text": "Pick", "buttons": ["x" * 21]},
        {"type": "buttons", "text": "Pick", "buttons": ["Yes", "yes"]},
        {"type": "buttons", "text": "x" * 1025, "buttons": ["Yes"]},
        {"type": "buttons", "text": "", "buttons": ["Yes"]},
        {"type": "buttons", "text": "Pick", "buttons": [""]},
    ]
    for action in bad_buttons:
        response = await _rule(live, token, inbox["id"], {"name": "buttons", "actions": [action]})
        assert response.status_code == 422, (action, response.text)
        assert response.json()["error"]["code"].startswith("invalid_action")
    long_title = await _rule(
        live,
        token,
        inbox["id"],
        {"name": "b", "actions": [{"type": "buttons", "text": "P", "buttons": ["x" * 21]}]},
    )
    assert "20 characters" in long_title.json()["error"]["message"]
    # Valid ones are saved, the team resolved to its id (by name, any case, or by id).
    team_id = await _team(live, token, "Billing")
    ok = await _rule(
        live,
        token,
        inbox["id"],
        {
            "name": "all three",
            "conditions": {"language": ["PT", "es", "pt"]},
            "actions": [
                {"type": "assign_team", "team": "billing"},
                {"type": "assign_team", "team": team_id},
                {"type": "buttons", "text": "Pick", "buttons": [" Track order ", "Talk"]},
            ],
        },
    )
    assert ok.status_code == 201, ok.text
    saved = ok.json()
    assert saved["conditions"]["language"] == ["pt", "es"]
    assert saved["actions"][0] == {"type": "assign_team", "team": "billing", "team_id": team_id}
    assert saved["actions"][1]["team_id"] == team_id
    assert saved["actions"][2]["buttons"] == ["Track order", "Talk"]


async def test_the_admin_page_refuses_an_unknown_team_too(live):
    from tests.web.client import csrf_of, sign_in

    inbox = await sim_inbox(live)
    await create_user(live, email="boss@example.com")
    browser = await sign_in(live, "boss@example.com")
    page = await browser.get(f"/admin/automation/inboxes/{inbox['id']}")
    response = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/rules",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "team",
            "trigger": "message",
            "conditions": '{"language": ["pt"]}',
            "actions": '[{"type": "assign_team", "team": "Nobody"}]',
        },
    )
    assert response.status_code == 422 and "no team named" in response.text
    assert "Nobody" in response.text


def test_language_condition_in_the_engine():
    class Row:
        id, name, trigger, position, enabled, after_handoff, inbox_id = (
            1,
            "pt",
            "message",
            0,
            1,
            0,
            1,
        )
        conditions = {"language": ["pt", "es"]}
        actions = [{"type": "reply", "text": "Olá"}]

    rules = compile_rules([Row()])
    assert rules.languages == frozenset({"pt", "es"})
    for language, hit in (("pt", True), ("es", True), ("en", False), (None, False)):
        facts = Facts.of("qualquer coisa", {}, "whatsapp", True, language)
        assert (evaluate(rules, "message", facts, taken_over=False) is not None) is hit


async def test_a_portuguese_message_matches_a_portuguese_rule_and_an_english_one_does_not(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    created = await _rule(
        live,
        token,
        inbox["id"],
        {
            "name": "Portuguese",
            "conditions": {"language": ["pt"]},
            "actions": [{"type": "reply", "text": "Olá! Já vamos responder."}],
        },
    )
    assert created.status_code == 201, created.text
    await customer_says(live, "Olá, onde está o meu pedido? Obrigado")
    assert await wait_received(live, 1) == ["Olá! Já vamos responder."]
    await customer_says(live, "Hello, where is my order? Thanks", wa_id=OTHER, name="Bob")
    await settle_jobs(live)
    assert received(live, OTHER) == []
    # Too short to be sure: the condition does not hold.
    await customer_says(live, "ok", wa_id="5511900000003", name="Cy")
    await settle_jobs(live)
    assert received(live, "5511900000003") == []


async def test_assign_team_gives_the_conversation_to_the_team_and_routes_within_it(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    team_id = await _team(live, token, "Billing")
    insider, _ = await create_user(
        live, email="in@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    outsider, _ = await create_user(
        live, email="out@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    async with live.runtime.db.session() as session:
        team = await session.get(Team, team_id)
        user = await session.get(User, insider)
        await do_set_team_member(session, actor=SYSTEM, team=team, user=user)
    created = await _rule(
        live,
        token,
        inbox["id"],
        {
            "name": "Invoices",
            "conditions": {"keywords": ["invoice"]},
            "actions": [{"type": "assign_team", "team": "Billing"}],
        },
    )
    assert created.status_code == 201, created.text
    await customer_says(live, "I need a copy of my invoice")
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        facts = await session.get(ConversationRouting, conversation.id)
        assert facts is not None and facts.team_id == team_id
        entry = await session.get(QueueEntry, conversation.id)
        assert entry is not None and entry.team_id == team_id
        audit = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "conversation.team")
            )
        ).all()
        assert len(audit) == 1 and audit[0].target_id == str(conversation.id)
        assert audit[0].actor_type == "system" and audit[0].details["after"] == team_id
        conversation_id = conversation.id
    # Someone outside the team comes online: not theirs. The team's member: assigned.
    async with live.runtime.db.session() as session:
        await do_set_availability(session, actor=SYSTEM, user_id=outsider, availability="online")
    async with live.runtime.db.session() as session:
        assert (await session.get(Conversation, conversation_id)).assignee_id is None
        await do_set_availability(session, actor=SYSTEM, user_id=insider, availability="online")
    async with live.runtime.db.session() as session:
        assert (await session.get(Conversation, conversation_id)).assignee_id == insider


async def test_assign_team_to_a_deleted_team_is_skipped_with_a_note(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    team_id = await _team(live, token, "Gone soon")
    created = await _rule(
        live,
        token,
        inbox["id"],
        {
            "name": "Invoices",
            "conditions": {"keywords": ["invoice"]},
            "actions": [
                {"type": "assign_team", "team": "Gone soon"},
                {"type": "reply", "text": "A colleague will send it."},
            ],
        },
    )
    assert created.status_code == 201, created.text
    async with live.runtime.db.session() as session:
        await do_delete_team(session, actor=SYSTEM, team=await session.get(Team, team_id))
    await customer_says(live, "invoice please")
    assert await wait_received(live, 1) == ["A colleague will send it."]
    await settle_jobs(live)
    notes = [m for m in await conversation_messages(live) if m.type == "note"]
    assert len(notes) == 1 and "Gone soon" in notes[0].text and "no longer exists" in notes[0].text
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(ConversationRouting.team_id)) is None
        assert (
            await session.scalar(
                select(AuditEvent.id).where(AuditEvent.action == "conversation.team")
            )
        ) is None


async def test_run_rule_turns_buttons_into_an_interactive_message():
    class Row:
        id, name, trigger, position, enabled, after_handoff, inbox_id = (
            7,
            "menu",
            "message",
            0,
            1,
            0,
            1,
        )
        conditions = {"keywords": ["menu"]}
        actions = [{"type": "buttons", "text": "Hi {{contact.first_name}}", "buttons": ["A", "B"]}]

    rule = compile_rules([Row()]).by_id[7]
    effects = await run_rule(
        rule,
        start=0,
        context={"contact": {"first_name": "Ana"}},
        http=None,  # type: ignore[arg-type]
        integrations={},
        quick_replies={},
    )
    (buttons,) = effects.sends
    assert buttons.interactive(7) == {
        "type": "button",
        "body": {"text": "Hi Ana"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "automation:7:1", "title": "A"}},
                {"type": "reply", "reply": {"id": "automation:7:2", "title": "B"}},
            ]
        },
    }


async def test_buttons_reach_the_customer_and_a_tap_matches_the_next_rule(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    for body in (
        {
            "name": "Menu",
            "conditions": {"keywords": ["menu", "hello"]},
            "actions": [
                {
                    "type": "buttons",
                    "text": "Hi {{contact.first_name|there}}, how can we help?",
                    "buttons": ["Track order", "Talk to a person"],
                }
            ],
        },
        {
            "name": "Person",
            "conditions": {"keywords": ["talk to a person"]},
            "actions": [{"type": "reply", "text": "A colleague will be with you shortly."}],
        },
    ):
        created = await _rule(live, token, inbox["id"], body)
        assert created.status_code == 201, created.text
    await customer_says(live, "Hello")

    async def interactive() -> list[dict[str, Any]]:
        return [
            s["body"]["interactive"]
            for s in live.simulator.outbound(PHONE_NUMBER_ID)
            if s["to"] == CUSTOMER and s["body"].get("type") == "interactive"
        ]

    sent = await eventually(interactive, timeout=15)
    assert sent[0]["type"] == "button"
    assert sent[0]["body"]["text"] == "Hi Ana, how can we help?"
    titles = [b["reply"]["title"] for b in sent[0]["action"]["buttons"]]
    assert titles == ["Track order", "Talk to a person"]
    await settle_jobs(live)
    bot = [m for m in await conversation_messages(live) if m.direction == "out"]
    assert bot[0].type == "interactive" and bot[0].content["automation"]["kind"] == "rule"
    # The customer taps "Talk to a person": its title is the inbound text, matched by rule 2.
    tapped = sent[0]["action"]["buttons"][1]["reply"]
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID,
        CUSTOMER,
        "Ana Souza",
        {"type": "interactive", "button_reply": {"id": tapped["id"], "title": tapped["title"]}},
    )
    await settle(live)
    assert await wait_received(live, 1) == ["A colleague will be with you shortly."]
    inbound = [m for m in await conversation_messages(live) if m.direction == "in"]
    assert inbound[-1].type == "interactive" and inbound[-1].text == "Talk to a person"
