"""People, inbox membership, API tokens and the policy, through the API and the admin pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from tests.helpers import auth, create_inbox, create_user
from tests.web.client import csrf_of, post_form, sign_in, submit_login, web_client
from wadesk.accounts.models import ApiToken
from wadesk.audit.models import AuditEvent
from wadesk.db import utcnow


async def audit(live, action: str) -> list[AuditEvent]:
    async with live.runtime.db.session() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            ).all()
        )


async def test_tokens_are_shown_once_scoped_expiring_and_revocable(live):
    _, writer = await create_user(
        live, email="ana@example.com", role="agent", scopes=("read", "write")
    )
    created = await live.client.post(
        "/api/v1/tokens", json={"name": "crm sync", "scopes": ["read"]}, headers=auth(writer)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    clear, token_id = body["token"], body["id"]
    assert clear.startswith("wdsk_") and body["prefix"] == clear[:12]
    listed = (await live.client.get("/api/v1/tokens", headers=auth(writer))).json()["items"]
    assert clear not in str(listed) and {t["name"] for t in listed} == {"t", "crm sync"}
    # read-only: reads work (and are tracked), writes and minting tokens do not.
    me = await live.client.get("/api/v1/me", headers=auth(clear))
    assert me.status_code == 200 and me.json()["email"] == "ana@example.com"
    mint = await live.client.post("/api/v1/tokens", json={"name": "x"}, headers=auth(clear))
    assert mint.status_code == 403
    contact = await live.client.post(
        "/api/v1/contacts", json={"phone": "+14155550100"}, headers=auth(clear)
    )
    assert contact.status_code == 403
    async with live.runtime.db.session() as session:
        row = await session.get(ApiToken, token_id)
        assert row.last_used_at is not None and row.last_used_ip == "127.0.0.1"
        assert clear not in (row.token_hash, row.prefix + "x")
    # A token never mints a broader one; an agent never gets the admin scope.
    broader = await live.client.post(
        "/api/v1/tokens", json={"name": "y", "scopes": ["admin"]}, headers=auth(writer)
    )
    assert broader.status_code == 422
    past = await live.client.post(
        "/api/v1/tokens",
        json={"name": "old", "expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        headers=auth(writer),
    )
    assert past.status_code == 422
    soon = await live.client.post(
        "/api/v1/tokens",
        json={"name": "soon", "expires_at": (utcnow() + timedelta(days=1)).isoformat()},
        headers=auth(writer),
    )
    assert soon.status_code == 201
    async with live.runtime.db.session() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == soon.json()["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (
        await live.client.get("/api/v1/me", headers=auth(soon.json()["token"]))
    ).status_code == 401
    revoked = await live.client.delete(f"/api/v1/tokens/{token_id}", headers=auth(writer))
    assert revoked.status_code == 204
    assert (await live.client.get("/api/v1/me", headers=auth(clear))).status_code == 401
    assert len(await audit(live, "token.create")) == 3  # the helper's, crm sync, soon
    assert [e.target_id for e in await audit(live, "token.revoke")] == [str(token_id)]


async def test_tokens_from_my_account_page(live):
    await create_user(live, email="ana@example.com", role="agent")
    ana = await sign_in(live, "ana@example.com")
    page = await ana.get("/account")
    assert 'value="admin"' not in page.text  # agents are not offered the admin scope
    made = await ana.post(
        "/account/tokens",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Zapier",
            "scopes": ["read", "write"],
            "expires_in_days": "30",
        },
    )
    assert made.status_code == 200 and "will not be shown again" in made.text
    import re

    clear = re.search(r'id="new-token">(wdsk_[^<]+)<', made.text).group(1)
    assert (await live.client.get("/api/v1/me", headers=auth(clear))).status_code == 200
    account = await ana.get("/account")
    assert "Zapier" in account.text and clear not in account.text
    async with live.runtime.db.session() as session:
        token = await session.scalar(select(ApiToken).where(ApiToken.name == "Zapier"))
        assert token.scopes == "read,write" and token.expires_at > utcnow() + timedelta(days=29)
    cheat = await ana.post(
        "/account/tokens",
        data={"csrf_token": csrf_of(page.text), "name": "x", "scopes": ["admin"]},
    )
    assert cheat.status_code == 422
    revoke = await post_form(ana, "/account", f"/account/tokens/{token.id}/revoke", {})
    assert revoke.status_code == 303
    assert (await live.client.get("/api/v1/me", headers=auth(clear))).status_code == 401
    await ana.aclose()


async def test_admins_manage_people_roles_and_inboxes_audited(live):
    inbox = await create_inbox(live)
    admin_id, admin = await create_user(live, email="boss@example.com", role="admin")
    _, agent = await create_user(
        live, email="ana@example.com", role="agent", scopes=("read", "write")
    )
    made = await live.client.post(
        "/api/v1/users",
        json={
            "email": "Bob@Example.com",
            "name": "Bob",
            "role": "agent",
            "password": "tangerine kayak vault",
            "inbox_ids": [inbox["id"]],
        },
        headers=auth(admin),
    )
    assert made.status_code == 201, made.text
    bob = made.json()
    assert bob["email"] == "bob@example.com" and bob["inbox_ids"] == [inbox["id"]]
    weak = await live.client.post(
        "/api/v1/users",
        json={"email": "c@example.com", "name": "C", "password": "password123"},
        headers=auth(admin),
    )
    assert weak.status_code == 422
    dup = await live.client.post(
        "/api/v1/users", json={"email": "bob@example.com", "name": "B"}, headers=auth(admin)
    )
    assert dup.status_code == 422
    promoted = await live.client.patch(
        f"/api/v1/users/{bob['id']}", json={"role": "supervisor"}, headers=auth(admin)
    )
    assert promoted.json()["role"] == "supervisor"
    removed = await live.client.delete(
        f"/api/v1/users/{bob['id']}/inboxes/{inbox['id']}", headers=auth(admin)
    )
    assert removed.json()["inbox_ids"] == []
    added = await live.client.put(
        f"/api/v1/users/{bob['id']}/inboxes/{inbox['id']}", headers=auth(admin)
    )
    assert added.json()["inbox_ids"] == [inbox["id"]]
    missing = await live.client.put(
        f"/api/v1/users/{bob['id']}/inboxes/999999", headers=auth(admin)
    )
    assert missing.status_code == 404
    listed = (await live.client.get("/api/v1/users", headers=auth(admin))).json()["items"]
    assert {u["email"] for u in listed} == {
        "boss@example.com",
        "ana@example.com",
        "bob@example.com",
    }
    for method, path in (
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("PATCH", f"/api/v1/users/{bob['id']}"),
        ("DELETE", f"/api/v1/users/{bob['id']}/mfa"),
        ("GET", "/api/v1/security/policy"),
    ):
        response = await live.client.request(method, path, json={}, headers=auth(agent))
        assert response.status_code == 403, (method, path)
    (change,) = await audit(live, "user.role_change")
    assert change.details == {"role": {"before": "agent", "after": "supervisor"}}
    assert change.actor_type == "token" and change.target_id == str(bob["id"])
    assert len(await audit(live, "inbox.member_add")) == 2
    assert len(await audit(live, "inbox.member_remove")) == 1
    # The new person signs in with the password the admin set.
    client = web_client(live)
    assert (
        await submit_login(client, "bob@example.com", "tangerine kayak vault")
    ).status_code == 303
    await client.aclose()
    assert admin_id


async def test_admin_pages_create_people_set_inboxes_and_the_policy(live):
    inbox = await create_inbox(live)
    await create_user(live, email="boss@example.com", role="admin")
    boss = await sign_in(live, "boss@example.com")
    page = await boss.get("/admin/users")
    assert page.status_code == 200 and "boss@example.com" in page.text
    made = await boss.post(
        "/admin/users",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Carla <script>",
            "email": "carla@example.com",
            "role": "agent",
            "password": "tangerine kayak vault",
        },
    )
    assert made.status_code == 303
    user_url = made.headers["location"].split("?")[0]
    person = await boss.get(user_url)
    assert (
        "Carla &lt;script&gt;" in person.text and "<script>" not in person.text.split("</head>")[1]
    )
    saved = await post_form(
        boss, user_url, f"{user_url}/inboxes", {"inbox_ids": [str(inbox["id"])]}
    )
    assert saved.status_code == 303
    assert "checked" in (await boss.get(user_url)).text
    policy = await post_form(boss, "/admin/security", "/admin/security", {"mfa_policy": "everyone"})
    assert policy.status_code == 303
    (event,) = await audit(live, "security.mfa_policy")
    assert event.details == {"before": None, "after": "everyone"}
    # The admin is now covered and sent to enrolment too.
    assert (await boss.get("/admin/users")).headers["location"] == "/account/mfa/setup"
    await boss.aclose()


async def test_agents_do_not_get_admin_pages(live):
    await create_user(live, email="ana@example.com", role="agent")
    ana = await sign_in(live, "ana@example.com")
    for path in (
        "/admin/users",
        "/admin/users/1",
        "/admin/security",
        "/admin/audit",
        "/admin/audit.csv",
    ):
        assert (await ana.get(path)).status_code == 403, path
    page = await ana.get("/account")
    assert "/admin/users" not in page.text
    await ana.aclose()


async def test_policy_and_mfa_reset_through_the_api(live):
    _, admin = await create_user(live, email="boss@example.com", role="admin")
    ana_id, _ = await create_user(live, email="ana@example.com", role="agent")
    assert (await live.client.get("/api/v1/security/policy", headers=auth(admin))).json() == {
        "mfa_policy": "optional"
    }
    put = await live.client.put(
        "/api/v1/security/policy", json={"mfa_policy": "admins"}, headers=auth(admin)
    )
    assert put.json() == {"mfa_policy": "admins"}
    bad = await live.client.put(
        "/api/v1/security/policy", json={"mfa_policy": "sometimes"}, headers=auth(admin)
    )
    assert bad.status_code == 422
    reset = await live.client.delete(f"/api/v1/users/{ana_id}/mfa", headers=auth(admin))
    assert reset.status_code == 200
    assert [e.target_id for e in await audit(live, "mfa.reset")] == [str(ana_id)]


async def test_an_admin_revokes_someones_token_and_sets_their_password_from_their_page(live):
    from datetime import timedelta as _td

    from wadesk.accounts.models import UserSession

    await create_user(live, email="boss@example.com", role="admin")
    ana_id, ana_token = await create_user(live, email="ana@example.com", role="agent")
    ana = await sign_in(live, "ana@example.com")
    boss = await sign_in(live, "boss@example.com")
    page = f"/admin/users/{ana_id}"
    async with live.runtime.db.session() as session:
        token_id = await session.scalar(select(ApiToken.id).where(ApiToken.user_id == ana_id))
    revoked = await post_form(boss, page, f"{page}/tokens/{token_id}/revoke", {})
    assert revoked.status_code == 303
    assert (await live.client.get("/api/v1/me", headers=auth(ana_token))).status_code == 401
    # Setting someone's password needs the admin's own recent password.
    async with live.runtime.db.session() as session:
        await session.execute(
            update(UserSession)
            .where(UserSession.user_id != ana_id)
            .values(reauth_at=utcnow() - _td(hours=1))
        )
    stale = await post_form(boss, page, f"{page}/password", {"password": "tangerine kayak vault"})
    assert stale.status_code == 303 and stale.headers["location"].startswith("/account/reauth")
    reauth_page = await boss.get(stale.headers["location"])
    await boss.post(
        "/account/reauth",
        data={"csrf_token": csrf_of(reauth_page.text), "password": "correct horse battery"},
    )
    done = await post_form(boss, page, f"{page}/password", {"password": "tangerine kayak vault"})
    assert done.status_code == 303 and "password_set" in done.headers["location"]
    assert (await ana.get("/account")).status_code == 303  # her sessions ended
    fresh = web_client(live)
    assert (
        await submit_login(fresh, "ana@example.com", "tangerine kayak vault")
    ).status_code == 303
    for client in (ana, boss, fresh):
        await client.aclose()
