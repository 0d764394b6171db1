"""Rules, hours, integrations, quick replies and templates through the API and the admin pages:
validation, permissions, audit, counters and the 90-day review flag."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.automation.conftest import (
    CUSTOMER,
    customer_says,
    demo_inbox,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import auth, create_user, eventually
from tests.web.client import csrf_of, sign_in
from wadesk.audit.models import AuditEvent
from wadesk.automation.models import AutomationRule, QuickReply
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow


async def test_rules_api_validates_orders_audits_and_applies_at_once(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    url = f"/api/v1/automation/inboxes/{inbox['id']}/rules"
    bad = await live.client.post(
        url,
        json={"name": "x", "conditions": {"regex": "(unclosed"}, "actions": [{"type": "reply"}]},
        headers=auth(token),
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_regex"
    first = await live.client.post(
        url,
        json={
            "name": "Hours",
            "conditions": {"keywords": ["opening hours", "horário"]},
            "actions": [{"type": "reply", "text": "Hi {{contact.first_name}}! 9 to 18."}],
        },
        headers=auth(token),
    )
    assert first.status_code == 201, first.text
    second = await live.client.post(
        url,
        json={
            "name": "Catch-all hours",
            "conditions": {"keywords": ["hours"]},
            "actions": [{"type": "reply", "text": "generic"}],
        },
        headers=auth(token),
    )
    rule_id = second.json()["id"]
    moved = await live.client.post(
        f"/api/v1/automation/rules/{rule_id}/move", json={"offset": -1}, headers=auth(token)
    )
    assert moved.json()["order"] == [rule_id, first.json()["id"]]
    tried = await live.client.post(
        f"/api/v1/automation/inboxes/{inbox['id']}/try",
        json={"text": "What are your opening HOURS?"},
        headers=auth(token),
    )
    assert tried.json()["rule_id"] == rule_id
    # The worker's compiled rules follow the change (event-driven invalidation).
    await customer_says(live, "what are your opening hours")
    assert (await wait_received(live, 1)) == ["generic"]
    patched = await live.client.patch(
        f"/api/v1/automation/rules/{rule_id}", json={"enabled": False}, headers=auth(token)
    )
    assert patched.json()["enabled"] is False
    await settle_jobs(live)
    await customer_says(live, "and your horario?")
    texts = await wait_received(live, 2)
    assert texts[1] == "Hi Ana! 9 to 18."
    async with live.runtime.db.session() as session:
        actions = (await session.scalars(select(AuditEvent.action))).all()
    assert {"automation_rule.create", "automation_rule.move", "automation_rule.update"} <= set(
        actions
    )


async def test_review_due_after_90_days(live):
    inbox = await demo_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    async with live.runtime.db.session() as session:
        rule = await session.scalar(select(AutomationRule).order_by(AutomationRule.id))
        rule.last_reviewed_at = utcnow() - timedelta(days=91)
        rule_id = rule.id
    listed = (
        await live.client.get(
            f"/api/v1/automation/inboxes/{inbox['id']}/rules", headers=auth(token)
        )
    ).json()["items"]
    assert [r["review_due"] for r in listed] == [True, False]
    reviewed = await live.client.post(
        f"/api/v1/automation/rules/{rule_id}/review", headers=auth(token)
    )
    assert reviewed.json()["review_due"] is False


async def test_agents_use_quick_replies_but_cannot_change_automation(live):
    inbox = await sim_inbox(live)
    _, boss = await create_user(live, email="boss@example.com")
    _, agent = await create_user(
        live, email="agent@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    created = await live.client.post(
        "/api/v1/quick-replies",
        json={
            "shortcut": "/Refund",
            "title": "Refund policy",
            "text": "Hi {{contact.first_name|there}}, {{agent.first_name}} here: refunds take 5 days.",
        },
        headers=auth(boss),
    )
    assert created.status_code == 201 and created.json()["shortcut"] == "refund"
    duplicate = await live.client.post(
        "/api/v1/quick-replies", json={"shortcut": "refund", "text": "x"}, headers=auth(boss)
    )
    assert duplicate.status_code == 409
    refused = await live.client.post(
        "/api/v1/quick-replies", json={"shortcut": "x", "text": "x"}, headers=auth(agent)
    )
    assert refused.status_code == 403
    rules = await live.client.post(
        f"/api/v1/automation/inboxes/{inbox['id']}/rules",
        json={"name": "x", "actions": [{"type": "resolve"}]},
        headers=auth(agent),
    )
    assert rules.status_code == 403
    found = (await live.client.get("/api/v1/quick-replies?q=/ref", headers=auth(agent))).json()
    assert [r["shortcut"] for r in found["items"]] == ["refund"]
    await customer_says(live, "hello")
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
    rendered = await live.client.post(
        f"/api/v1/quick-replies/{created.json()['id']}/render",
        json={"conversation_id": conversation.id},
        headers=auth(agent),
    )
    assert rendered.json()["text"] == "Hi Ana, agent here: refunds take 5 days."
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(QuickReply.usage_count))) == 1


async def test_templates_sync_create_preview_and_send_outside_the_window(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    created = await live.client.post(
        "/api/v1/message-templates",
        json={
            "inbox_id": inbox["id"],
            "name": "order_update",
            "language": "en_US",
            "category": "UTILITY",
            "body": "Hi {{1}}, your order {{2}} has shipped.",
            "examples": ["Ana", "12345"],
            "buttons": ["Track it"],
        },
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["parameters"] == {"header": 0, "body": 2}

    async def approved() -> dict | None:
        # Meta (the simulator) reviews it a moment later; a sync brings the new status.
        synced = await live.client.post(
            f"/api/v1/automation/inboxes/{inbox['id']}/message-templates/sync",
            headers=auth(token),
        )
        assert synced.status_code == 200, synced.text
        listed = (
            await live.client.get(
                f"/api/v1/message-templates?inbox_id={inbox['id']}", headers=auth(token)
            )
        ).json()["items"]
        ours = next(t for t in listed if t["name"] == "order_update")
        return ours if ours["status"] == "APPROVED" else None

    ours = await eventually(approved)
    preview = await live.client.post(
        f"/api/v1/message-templates/{ours['id']}/preview",
        json={"body": ["Ana", "12345"]},
        headers=auth(token),
    )
    assert preview.json()["body"] == "Hi Ana, your order 12345 has shipped."
    # A conversation whose 24-hour window closed: text is refused, the template goes out.
    await customer_says(live, "hi")
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        conversation.last_customer_message_at = utcnow() - timedelta(hours=30)
    text = await live.client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"type": "text", "text": "hello?"},
        headers=auth(token),
    )
    assert text.json()["error"]["code"] == "window_closed"
    wrong = await live.client.post(
        f"/api/v1/message-templates/{ours['id']}/send",
        json={"conversation_id": conversation.id, "body": ["Ana"]},
        headers=auth(token),
    )
    assert wrong.json()["error"]["code"] == "template_parameters"
    sent = await live.client.post(
        f"/api/v1/message-templates/{ours['id']}/send",
        json={"conversation_id": conversation.id, "body": ["Ana", "12345"]},
        headers=auth(token),
    )
    assert sent.status_code == 201, sent.text

    async def delivered() -> list:
        return [
            s
            for s in live.simulator.outbound(inbox["phone_number_id"])
            if s["to"] == CUSTOMER and s["body"].get("type") == "template"
        ]

    sends = await eventually(delivered)
    assert sends[0]["body"]["template"]["name"] == "order_update"


async def test_admin_pages_create_a_rule_and_refuse_bad_json(live):
    inbox = await demo_inbox(live)
    await create_user(live, email="boss@example.com")
    browser = await sign_in(live, "boss@example.com")
    page = await browser.get(f"/admin/automation/inboxes/{inbox['id']}")
    assert page.status_code == 200 and "Order status (demo)" in page.text
    csrf = csrf_of(page.text)
    bad = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/rules",
        data={"csrf_token": csrf, "name": "Broken", "conditions": "{nope", "actions": "[]"},
    )
    assert bad.status_code == 422 and "not valid JSON" in bad.text
    good = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/rules",
        data={
            "csrf_token": csrf,
            "name": "Thanks <b>",
            "trigger": "message",
            "conditions": '{"keywords": ["thanks", "obrigado"]}',
            "actions": '[{"type": "reply", "text": "You are welcome!"}, {"type": "resolve"}]',
        },
    )
    assert good.status_code == 303
    page = await browser.get(f"/admin/automation/inboxes/{inbox['id']}")
    assert "Thanks &lt;b&gt;" in page.text
    tried = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/try",
        data={"csrf_token": csrf, "text": "Obrigado!"},
    )
    assert "Thanks &lt;b&gt;" in tried.text
    hours = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/hours",
        data={
            "csrf_token": csrf,
            "timezone": "Mars/Base",
            "mon_start": "09:00",
            "mon_end": "17:00",
        },
    )
    assert hours.status_code == 422 and "Unknown time zone" in hours.text
    for path in (
        "/admin/automation",
        "/admin/automation/integrations",
        "/admin/automation/quick-replies",
        f"/admin/automation/inboxes/{inbox['id']}/templates",
    ):
        assert (await browser.get(path)).status_code == 200, path
    await browser.aclose()
