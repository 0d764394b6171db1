"""Reading the audit trail: filters, CSV export, who looked at what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)
from tests.web.client import sign_in
from wadesk.audit.models import AuditEvent
from wadesk.db import utcnow


async def seed(live):
    inbox = await create_inbox(live)
    admin_id, admin = await create_user(live, email="boss@example.com", role="admin")
    agent_id, agent = await create_user(
        live,
        email="ana@example.com",
        role="agent",
        scopes=("read", "write"),
        inbox_ids=(inbox["id"],),
    )
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope(
            [text_message("14155550001", "wamid.a1", "hello")],
            names={"14155550001": '=HYPERLINK("x")'},
        ),
    )
    await settle(live)
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(admin))).json()[
        "items"
    ][0]
    return inbox, admin_id, admin, agent_id, agent, conversation


async def events(live, action: str) -> list[AuditEvent]:
    async with live.runtime.db.session() as session:
        return list(
            (await session.scalars(select(AuditEvent).where(AuditEvent.action == action))).all()
        )


async def test_staff_views_of_contacts_and_conversations_are_recorded_once_per_window(live):
    _, _, admin, agent_id, agent, conversation = await seed(live)
    for _ in range(3):
        assert (
            await live.client.get(
                f"/api/v1/conversations/{conversation['id']}", headers=auth(agent)
            )
        ).status_code == 200
        assert (
            await live.client.get(
                f"/api/v1/contacts/{conversation['contact_id']}", headers=auth(agent)
            )
        ).status_code == 200
    views = await events(live, "conversation.view")
    assert len(views) == 1 and views[0].target_id == str(conversation["id"])
    assert views[0].actor_type == "token" and views[0].ip == "127.0.0.1"
    assert views[0].user_agent and "python-httpx" in views[0].user_agent
    assert len(await events(live, "contact.view")) == 1
    # Another person viewing is another row; a 404 (no access) is no view.
    await live.client.get(f"/api/v1/conversations/{conversation['id']}", headers=auth(admin))
    assert len(await events(live, "conversation.view")) == 2
    await live.client.get("/api/v1/conversations/999999", headers=auth(agent))
    assert len(await events(live, "conversation.view")) == 2
    # Outside the window, a new view is recorded again.
    async with live.runtime.db.session() as session:
        from sqlalchemy import text

        if live.runtime.db.is_sqlite:
            for row in views:
                await session.execute(
                    text(
                        f"UPDATE audit_events SET created_at = '2000-01-01 00:00:00.000000' WHERE id = {row.id}"
                    )
                )
    if live.runtime.db.is_sqlite:
        await live.client.get(f"/api/v1/conversations/{conversation['id']}", headers=auth(agent))
        assert len(await events(live, "conversation.view")) == 3
    assert agent_id


async def test_filters_who_what_when_and_conversation(live):
    _, admin_id, admin, agent_id, agent, conversation = await seed(live)
    sent = await live.client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"type": "text", "text": "hi"},
        headers=auth(agent),
    )
    assert sent.status_code == 201
    await live.client.patch(
        f"/api/v1/conversations/{conversation['id']}",
        json={"priority": "high"},
        headers=auth(admin),
    )

    async def query(**params):
        response = await live.client.get("/api/v1/audit-events", params=params, headers=auth(admin))
        assert response.status_code == 200, response.text
        return response.json()["items"]

    by_agent = await query(user_id=agent_id)
    assert {e["action"] for e in by_agent} == {"message.send"}
    assert by_agent[0]["actor"] == "ana@example.com (token t)"
    about = await query(conversation_id=conversation["id"])
    assert {e["action"] for e in about} >= {"message.send", "conversation.update"}
    users = await query(action="user.")
    assert {e["action"] for e in users} == {"user.create"} and len(users) == 2
    assert await query(since=(utcnow() + timedelta(hours=1)).isoformat()) == []
    assert len(await query(until=(utcnow() + timedelta(hours=1)).isoformat())) >= 5
    page = await query(limit=2)
    assert len(page) == 2 and page[0]["id"] > page[1]["id"]
    naive = await live.client.get(
        "/api/v1/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=auth(admin)
    )
    assert naive.status_code == 422
    forbidden = await live.client.get("/api/v1/audit-events", headers=auth(agent))
    assert forbidden.status_code == 403
    assert admin_id


async def test_csv_export_is_complete_safe_for_spreadsheets_and_audited(live):
    _, _, admin, _, agent, conversation = await seed(live)
    await live.client.patch(
        f"/api/v1/contacts/{conversation['contact_id']}",
        json={"name": "=cmd|' /C calc'!A0"},
        headers=auth(admin),
    )
    response = await live.client.get("/api/v1/audit-events/export", headers=auth(admin))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    async with live.runtime.db.session() as session:
        total = len((await session.scalars(select(AuditEvent.id))).all())
    # Every row, the export's own record last (it is committed before the file streams).
    assert len(rows) == total and rows[-1]["action"] == "audit.export"
    assert [int(r["id"]) for r in rows] == sorted(int(r["id"]) for r in rows)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")), row
    exports = await events(live, "audit.export")
    assert len(exports) == 1 and exports[0].details == {"filter": {}}
    filtered = await live.client.get(
        "/api/v1/audit-events/export", params={"action": "user.create"}, headers=auth(admin)
    )
    assert [r["action"] for r in csv.DictReader(io.StringIO(filtered.text))] == ["user.create"] * 2
    assert (
        await live.client.get("/api/v1/audit-events/export", headers=auth(agent))
    ).status_code == 403


async def test_the_admin_audit_page_filters_and_exports(live):
    _, _, _, agent_id, _, _ = await seed(live)
    boss = await sign_in(live, "boss@example.com")
    page = await boss.get("/admin/audit")
    assert page.status_code == 200
    assert "<code>auth.sign_in</code>" in page.text and "<code>user.create</code>" in page.text
    mine = await boss.get("/admin/audit", params={"who": "boss@example.com", "action": "auth."})
    assert "<code>auth.sign_in</code>" in mine.text and "<code>user.create</code>" not in mine.text
    assert "/admin/audit.csv?who=boss%40example.com&amp;action=auth." in mine.text
    exported = await boss.get("/admin/audit.csv", params={"action": "user.create"})
    assert exported.status_code == 200
    assert exported.text.count("user.create") == 2
    target = await boss.get(
        "/admin/audit", params={"target_type": "user", "target_id": str(agent_id)}
    )
    assert "<code>user.create</code>" in target.text
    bad = await boss.get("/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 422
    await boss.aclose()
