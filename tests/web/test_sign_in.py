"""Signing in through the pages: cookies, generic errors, sessions, CSRF, security headers."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie

from sqlalchemy import select, update

from tests.helpers import create_user
from tests.web.client import PASSWORD, csrf_of, post_form, sign_in, submit_login, web_client
from wadesk.accounts.models import UserSession
from wadesk.audit.models import AuditEvent
from wadesk.db import utcnow


async def actions(live) -> list[tuple[str, str | None]]:
    async with live.runtime.db.session() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.target_id).order_by(AuditEvent.id)
        )
        return [tuple(r) for r in rows.all()]


async def test_the_sign_in_page_is_served_with_strict_security_headers(live):
    response = await live.client.get("/login")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers  # plain http here
    # No inline script anywhere: every <script> has a src.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) == []
    assert "style=" not in response.text
    # API responses carry the headers too.
    api = await live.client.get("/api/v1/conversations")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in api.headers["content-security-policy"]


async def test_sign_in_sets_an_httponly_lax_session_cookie_and_opens_my_account(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = web_client(live)
    response = await submit_login(client, "Ana@Example.com ", next_url="/account?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/account?x=1"
    raw = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    session_cookie = next(v for v in raw if v.startswith("wadesk_session="))
    lowered = session_cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # http: Secure would make the browser drop it
    page = await client.get("/account")
    assert page.status_code == 200
    assert "ana@example.com" in page.text and "Where you're signed in" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert ("auth.sign_in", None) not in await actions(live)
    assert any(a == "auth.sign_in" for a, _ in await actions(live))
    await client.aclose()


async def test_wrong_password_and_unknown_account_get_the_same_generic_answer(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = web_client(live)
    wrong = await submit_login(client, "ana@example.com", "not the password at all")
    unknown = await submit_login(client, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert "Incorrect email or password." in response.text
        assert "wadesk_session=" not in response.headers.get("set-cookie", "")
    failures = [a for a in await actions(live) if a[0] == "auth.sign_in_failed"]
    assert len(failures) == 2
    async with live.runtime.db.session() as session:
        details = (
            await session.scalars(
                select(AuditEvent.details)
                .where(AuditEvent.action == "auth.sign_in_failed")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [d["reason"] for d in details] == ["bad_password", "unknown_account"]
    # The password typed is never stored anywhere in the audit trail.
    assert "not the password" not in str(details)
    await client.aclose()


async def test_login_form_without_its_csrf_token_is_refused(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = web_client(live)
    await client.get("/login")
    response = await client.post(
        "/login", data={"email": "ana@example.com", "password": PASSWORD, "csrf_token": "x"}
    )
    assert response.status_code == 403
    fresh = web_client(live)  # never loaded the form: no pre-login cookie
    response = await fresh.post("/login", data={"email": "ana@example.com", "password": PASSWORD})
    assert response.status_code == 403
    await client.aclose()
    await fresh.aclose()


async def test_forms_and_cookie_api_calls_need_the_session_csrf_token(live):
    await create_user(live, email="ana@example.com", role="admin")
    client = await sign_in(live, "ana@example.com")
    no_token = await client.post("/account/sessions/revoke-others", data={})
    assert no_token.status_code == 403 and "This form has expired" in no_token.text
    wrong = await client.post("/account/sessions/revoke-others", data={"csrf_token": "nope"})
    assert wrong.status_code == 403
    ok = await post_form(client, "/account", "/account/sessions/revoke-others", {})
    assert ok.status_code == 303
    # The JSON API accepts the session cookie: reads freely, writes only with X-CSRF-Token.
    assert (await client.get("/api/v1/conversations")).status_code == 200
    body = {"name": "x", "phone": "+14155550100"}
    refused = await client.post("/api/v1/contacts", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    token = csrf_of((await client.get("/account")).text)
    created = await client.post("/api/v1/contacts", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201, created.text
    await client.aclose()


async def test_idle_timeout_absolute_lifetime_and_sign_out_end_the_session(live):
    await create_user(live, email="ana@example.com", role="agent")
    idle = await sign_in(live, "ana@example.com")
    absolute = await sign_in(live, "ana@example.com")
    out = await sign_in(live, "ana@example.com")
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(UserSession).order_by(UserSession.id))).all()
        idle_id, absolute_id = rows[0].id, rows[1].id
        settings = live.runtime.settings
        await session.execute(
            update(UserSession)
            .where(UserSession.id == idle_id)
            .values(last_seen_at=utcnow() - timedelta(minutes=settings.session_idle_minutes + 1))
        )
        await session.execute(
            update(UserSession)
            .where(UserSession.id == absolute_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for client in (idle, absolute):
        page = await client.get("/account")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await client.get("/api/v1/conversations")).status_code == 401
    cookie = out.cookies.get("wadesk_session")
    signed_out = await post_form(out, "/account", "/logout", {})
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")
    cleared = SimpleCookie(signed_out.headers["set-cookie"])
    assert cleared["wadesk_session"].value == ""
    # The old cookie value is dead on the server, not just forgotten by the browser.
    replay = web_client(live)
    replay.cookies.set("wadesk_session", cookie)
    assert (await replay.get("/api/v1/conversations")).status_code == 401
    for client in (idle, absolute, out, replay):
        await client.aclose()


async def test_signed_in_pages_redirect_to_sign_in_and_back(live):
    response = await live.client.get("/account/password")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/password"
    await create_user(live, email="ana@example.com", role="agent")
    client = web_client(live)
    login = await submit_login(client, "ana@example.com", next_url="https://evil.example/")
    assert login.headers["location"] == "/account"  # no open redirect
    await client.aclose()
