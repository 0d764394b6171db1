"""Sessions: my list, signing out one or all, admins ending anyone's, deactivation."""

from __future__ import annotations

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
from tests.web.client import csrf_of, post_form, sign_in
from wadesk.accounts.models import ApiToken, UserSession
from wadesk.audit.models import AuditEvent
from wadesk.conversations.models import Conversation

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def audit_actions(live) -> list[str]:
    async with live.runtime.db.session() as session:
        return list(
            (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
        )


async def test_my_sessions_list_devices_and_sign_out_one_then_all_others(live):
    _, token = await create_user(live, email="ana@example.com", role="agent")
    desktop = await sign_in(live, "ana@example.com", user_agent=DESKTOP_UA)
    phone = await sign_in(live, "ana@example.com", user_agent=PHONE_UA)
    third = await sign_in(live, "ana@example.com", user_agent="curl/8.5.0")
    page = await desktop.get("/account")
    assert "Chrome on Windows" in page.text and "Safari on iOS" in page.text
    assert "This device" in page.text and "127.0.0.1" in page.text
    listed = (await live.client.get("/api/v1/me/sessions", headers=auth(token))).json()["items"]
    assert {s["device"] for s in listed} == {"Chrome on Windows", "Safari on iOS", "curl"}
    phone_id = next(s["id"] for s in listed if s["device"] == "Safari on iOS")
    # Sign the phone out from the desktop: it is out on its very next request.
    revoked = await post_form(desktop, "/account", f"/account/sessions/{phone_id}/revoke", {})
    assert revoked.status_code == 303
    assert (await phone.get("/account")).status_code == 303
    assert (await phone.get("/api/v1/me")).status_code == 401
    assert (await third.get("/account")).status_code == 200
    await post_form(desktop, "/account", "/account/sessions/revoke-others", {})
    assert (await third.get("/account")).status_code == 303
    assert (await desktop.get("/account")).status_code == 200
    actions = await audit_actions(live)
    assert "session.revoke" in actions and "session.revoke_all" in actions
    for client in (desktop, phone, third):
        await client.aclose()


async def test_i_cannot_end_someone_elses_session_but_an_admin_can(live):
    await create_user(live, email="boss@example.com", role="admin")
    ana_id, _ = await create_user(live, email="ana@example.com", role="agent")
    await create_user(live, email="bob@example.com", role="agent")
    ana = await sign_in(live, "ana@example.com")
    bob = await sign_in(live, "bob@example.com")
    boss = await sign_in(live, "boss@example.com")
    async with live.runtime.db.session() as session:
        ana_session = await session.scalar(
            select(UserSession).where(UserSession.user_id == ana_id).order_by(UserSession.id)
        )
    not_mine = await post_form(bob, "/account", f"/account/sessions/{ana_session.id}/revoke", {})
    assert not_mine.status_code == 404
    api = await bob.delete(
        f"/api/v1/me/sessions/{ana_session.id}",
        headers={"X-CSRF-Token": csrf_of((await bob.get("/account")).text)},
    )
    assert api.status_code == 404
    assert (await ana.get("/account")).status_code == 200
    ended = await post_form(
        boss,
        f"/admin/users/{ana_id}",
        f"/admin/users/{ana_id}/sessions/{ana_session.id}/revoke",
        {},
    )
    assert ended.status_code == 303
    assert (await ana.get("/account")).status_code == 303
    async with live.runtime.db.session() as session:
        row = await session.get(UserSession, ana_session.id)
        assert row.revoked_reason == "ended_by_admin"
    for client in (ana, bob, boss):
        await client.aclose()


async def test_deactivation_ends_sessions_and_tokens_and_returns_conversations_to_the_queue(live):
    inbox = await create_inbox(live)
    admin_id, admin_token = await create_user(live, email="boss@example.com", role="admin")
    ana_id, ana_token = await create_user(
        live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    for n in range(3):
        await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope([text_message(f"1415555000{n}", f"wamid.d{n}", "hi")]),
        )
    await settle(live)
    conversations = (
        await live.client.get("/api/v1/conversations", headers=auth(admin_token))
    ).json()["items"]
    for c in conversations[:2]:
        r = await live.client.patch(
            f"/api/v1/conversations/{c['id']}",
            json={"assignee_id": ana_id},
            headers=auth(admin_token),
        )
        assert r.status_code == 200
    resolved = conversations[1]["id"]
    await live.client.patch(
        f"/api/v1/conversations/{resolved}", json={"status": "resolved"}, headers=auth(admin_token)
    )
    ana = await sign_in(live, "ana@example.com")
    boss = await sign_in(live, "boss@example.com")
    assert (await live.client.get("/api/v1/me", headers=auth(ana_token))).status_code == 200
    done = await post_form(boss, f"/admin/users/{ana_id}", f"/admin/users/{ana_id}/deactivate", {})
    assert done.status_code == 303
    # At once: the browser session and the API token stop working.
    assert (await ana.get("/account")).status_code == 303
    assert (await live.client.get("/api/v1/me", headers=auth(ana_token))).status_code == 401
    async with live.runtime.db.session() as session:
        tokens = (await session.scalars(select(ApiToken).where(ApiToken.user_id == ana_id))).all()
        assert all(t.revoked_at is not None for t in tokens)
        assignees = dict(
            (await session.execute(select(Conversation.id, Conversation.assignee_id)))
            .tuples()
            .all()
        )
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "user.deactivate")
        )
    # The open conversation went back to the queue; the resolved one keeps its history.
    assert assignees[conversations[0]["id"]] is None
    assert assignees[resolved] == ana_id
    assert event.details == {"sessions": 1, "tokens": 1, "conversations": 1}
    assert event.actor_id == str(admin_id)
    # She cannot sign in again, with the same generic answer as a wrong password.
    from tests.web.client import submit_login, web_client

    again = web_client(live)
    assert (await submit_login(again, "ana@example.com")).status_code == 401
    # Reactivated: she signs in again, her old token stays dead.
    await post_form(boss, f"/admin/users/{ana_id}", f"/admin/users/{ana_id}/reactivate", {})
    assert (await submit_login(again, "ana@example.com")).status_code == 303
    assert (await live.client.get("/api/v1/me", headers=auth(ana_token))).status_code == 401
    for client in (ana, boss, again):
        await client.aclose()


async def test_the_last_admin_cannot_be_demoted_or_deactivated_and_nobody_deactivates_themselves(
    live,
):
    admin_id, admin_token = await create_user(live, email="boss@example.com", role="admin")
    demote = await live.client.patch(
        f"/api/v1/users/{admin_id}", json={"role": "agent"}, headers=auth(admin_token)
    )
    assert demote.status_code == 422 and "last active admin" in demote.json()["error"]["message"]
    boss = await sign_in(live, "boss@example.com")
    self_off = await post_form(
        boss, f"/admin/users/{admin_id}", f"/admin/users/{admin_id}/deactivate", {}
    )
    assert self_off.status_code == 422 and "cannot deactivate yourself" in self_off.text
    await boss.aclose()
