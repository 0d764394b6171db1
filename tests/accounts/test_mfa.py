"""TOTP two-step verification: enrolment, sign-in, recovery codes, re-authentication, policy."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select, text, update

from tests.helpers import SYSTEM, create_user
from tests.web.client import (
    PASSWORD,
    csrf_of,
    enrol_mfa,
    manual_key_of,
    next_code,
    sign_in,
    submit_login,
    web_client,
)
from wadesk.accounts.actions import do_reset_mfa, do_set_mfa_policy
from wadesk.accounts.models import RecoveryCode, User, UserSession
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


async def second_step(client, code: str):
    page = await client.get("/login/mfa")
    assert page.status_code == 200
    return await client.post("/login/mfa", data={"code": code, "csrf_token": csrf_of(page.text)})


async def test_enrolment_shows_a_qr_code_and_a_key_and_needs_a_correct_code(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    page = await client.get("/account/mfa/setup")
    assert 'src="data:image/svg+xml;charset=utf-8,%3Csvg' in page.text
    secret = manual_key_of(page.text)
    assert len(secret) == 32
    # Reloading keeps the same pending key (the app may already have scanned it).
    assert manual_key_of((await client.get("/account/mfa/setup")).text) == secret
    wrong = await client.post(
        "/account/mfa/setup", data={"code": "000000", "csrf_token": csrf_of(page.text)}
    )
    assert wrong.status_code == 422 and "not right" in wrong.text
    async with live.runtime.db.session() as session:
        user = await session.scalar(select(User))
        assert user.mfa_secret is None and user.mfa_pending_secret == secret
    done = await client.post(
        "/account/mfa/setup",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(page.text)},
    )
    assert done.status_code == 200 and done.text.count("<li><code>") == 10
    async with live.runtime.db.session() as session:
        user = await session.scalar(select(User))
        assert user.mfa_secret == secret and user.mfa_pending_secret is None
        # Encrypted at rest: the column holds a Fernet token, never the seed.
        raw = await session.scalar(text("SELECT mfa_secret FROM users"))
        assert secret not in raw and raw.startswith("gAAAA")
        hashes = (await session.scalars(select(RecoveryCode.code_hash))).all()
        assert len(hashes) == 10 and not any(
            c in h for c in done.text for h in hashes if len(c) > 5
        )
    assert [e.details["method"] for e in await audit(live, "mfa.enable")] == ["totp"]
    account = await client.get("/account")
    assert "10</strong> of 10 recovery codes left" in account.text
    await client.aclose()


async def test_sign_in_with_totp_and_a_code_works_only_once(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    secret, _ = await enrol_mfa(client)
    await client.aclose()

    fresh = web_client(live)
    response = await submit_login(fresh, "ana@example.com")
    assert response.status_code == 303 and response.headers["location"].startswith("/login/mfa")
    # Half signed in: nothing but the second step opens.
    assert (await fresh.get("/account")).status_code == 303
    assert (await fresh.get("/api/v1/conversations")).status_code == 401
    assert (await second_step(fresh, "123456")).status_code == 401
    # The code enrolment used is spent; the next one is good.
    async with live.runtime.db.session() as session:
        spent_step = (await session.scalar(select(User))).mfa_last_step
    spent = pyotp.TOTP(secret).generate_otp(spent_step)
    assert (await second_step(fresh, spent)).status_code == 401
    code = next_code(secret)
    done = await second_step(fresh, code)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert (await fresh.get("/account")).status_code == 200
    # The same code cannot be replayed for another sign-in.
    replay = web_client(live)
    await submit_login(replay, "ana@example.com")
    refused = await second_step(replay, code)
    assert refused.status_code == 401 and "already used" in refused.text
    signed_in = [e.details for e in await audit(live, "auth.sign_in")]
    assert signed_in[-1] == {"mfa": "totp"}
    assert len(await audit(live, "auth.mfa_failed")) == 3
    for c in (fresh, replay):
        await c.aclose()


async def test_a_recovery_code_signs_in_once(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    _, codes = await enrol_mfa(client)
    await client.aclose()
    first = web_client(live)
    await submit_login(first, "ana@example.com")
    ok = await second_step(first, codes[3].upper().replace("-", " "))
    assert ok.status_code == 303
    again = web_client(live)
    await submit_login(again, "ana@example.com")
    assert (await second_step(again, codes[3])).status_code == 401
    assert (await second_step(again, codes[4])).status_code == 303
    events = await audit(live, "auth.sign_in")
    assert [e.details for e in events[-2:]] == [
        {"mfa": "recovery_code", "recovery_codes_left": 9},
        {"mfa": "recovery_code", "recovery_codes_left": 8},
    ]
    for c in (first, again):
        await c.aclose()


async def test_guessing_codes_locks_the_second_step(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    secret, _ = await enrol_mfa(client)
    attacker = web_client(live)
    await submit_login(attacker, "ana@example.com")
    limit = live.runtime.settings.login_max_failures_per_account
    statuses = [(await second_step(attacker, f"{n:06d}")).status_code for n in range(limit)]
    assert statuses == [401] * (limit - 1) + [429]
    locked = await second_step(attacker, next_code(secret))
    assert locked.status_code == 429
    for c in (client, attacker):
        await c.aclose()


async def test_changing_mfa_needs_a_recent_password(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    async with live.runtime.db.session() as session:
        await session.execute(update(UserSession).values(reauth_at=utcnow() - timedelta(hours=1)))
    response = await client.get("/account/mfa/setup")
    assert response.status_code == 303
    assert response.headers["location"] == "/account/reauth?next=/account/mfa/setup"
    page = await client.get(response.headers["location"])
    wrong = await client.post(
        "/account/reauth",
        data={
            "password": "nope nope nope",
            "next": "/account/mfa/setup",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert wrong.status_code == 401
    right = await client.post(
        "/account/reauth",
        data={"password": PASSWORD, "next": "/account/mfa/setup", "csrf_token": csrf_of(page.text)},
    )
    assert right.status_code == 303 and right.headers["location"] == "/account/mfa/setup"
    assert (await client.get("/account/mfa/setup")).status_code == 200
    assert [e.action for e in await audit(live, "auth.reauth_failed")] == ["auth.reauth_failed"]
    await client.aclose()


async def test_turning_mfa_off_and_new_recovery_codes(live):
    await create_user(live, email="ana@example.com", role="agent")
    client = await sign_in(live, "ana@example.com")
    _, codes = await enrol_mfa(client)
    page = await client.get("/account")
    renewed = await client.post(
        "/account/mfa/recovery-codes", data={"csrf_token": csrf_of(page.text)}
    )
    assert renewed.status_code == 200 and "previous codes no longer work" in renewed.text
    assert codes[0] not in renewed.text
    off = await client.post("/account/mfa/disable", data={"csrf_token": csrf_of(page.text)})
    assert off.status_code == 303
    async with live.runtime.db.session() as session:
        user = await session.scalar(select(User))
        assert user.mfa_secret is None
        assert await session.scalar(select(RecoveryCode.id)) is None
    assert len(await audit(live, "mfa.disable")) == 1
    assert len(await audit(live, "mfa.recovery_codes_regenerate")) == 1
    await client.aclose()


async def test_policy_sends_people_without_mfa_to_enrolment_and_nowhere_else(live):
    admin_id, _ = await create_user(live, email="boss@example.com", role="admin")
    await create_user(live, email="ana@example.com", role="agent")
    async with live.runtime.db.session() as session:
        await do_set_mfa_policy(session, actor=SYSTEM, policy="admins")
    agent = await sign_in(live, "ana@example.com")
    assert (await agent.get("/account")).status_code == 200  # agents are not covered
    boss = await sign_in(live, "boss@example.com")
    for path in ("/account", "/account/password", "/admin/users", "/inbox", "/"):
        response = await boss.get(path)
        if response.status_code == 303 and response.headers["location"] in ("/account", "/inbox"):
            response = await boss.get(response.headers["location"])
        assert response.status_code == 303, path
        assert response.headers["location"] == "/account/mfa/setup", path
    api = await boss.get("/api/v1/conversations")
    assert api.status_code == 403 and api.json()["error"]["code"] == "mfa_enrollment_required"
    setup = await boss.get("/account/mfa/setup")
    assert "requires two-step verification" in setup.text
    await enrol_mfa(boss)
    assert (await boss.get("/account")).status_code == 200
    # Required for admins: an admin cannot turn it off.
    page = await boss.get("/account")
    refused = await boss.post("/account/mfa/disable", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409
    async with live.runtime.db.session() as session:
        await do_set_mfa_policy(session, actor=SYSTEM, policy="everyone")
    assert (await agent.get("/account")).headers["location"] == "/account/mfa/setup"
    assert admin_id
    for c in (agent, boss):
        await c.aclose()


async def test_an_admin_reset_removes_mfa_and_ends_sessions_audited(live):
    admin_id, _ = await create_user(live, email="boss@example.com", role="admin")
    ana_id, _ = await create_user(live, email="ana@example.com", role="agent")
    ana = await sign_in(live, "ana@example.com")
    await enrol_mfa(ana)
    async with live.runtime.db.session() as session:
        admin = await session.get(User, admin_id)
        user = await session.get(User, ana_id)
        from wadesk.audit.actions import Actor

        actor = Actor(type="user", id=str(admin.id), user_id=admin.id)
        await do_reset_mfa(session, actor=actor, user=user)
    assert (await ana.get("/account")).status_code == 303  # signed out at once
    again = await sign_in(live, "ana@example.com")  # password alone again
    assert (await again.get("/account")).status_code == 200
    (event,) = await audit(live, "mfa.reset")
    assert event.actor_id == str(admin_id) and event.target_id == str(ana_id)
    assert event.details == {"had_mfa": True, "sessions_ended": 1}
    for c in (ana, again):
        await c.aclose()
