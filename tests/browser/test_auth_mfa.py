"""In Chromium: sign in, set up two-step verification by reading the manual key from the page
(no QR scanning), sign out, sign in again with password + TOTP. Screenshots for the docs."""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import update

from tests.browser.conftest import SCREENSHOTS
from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)
from wadesk.accounts.models import User


async def test_enrol_mfa_from_the_manual_key_then_sign_in_with_a_code(live, browser):
    inbox = await create_inbox(live)
    await create_user(live, email="marina@example.com", role="admin")
    _, agent = await create_user(
        live, email="joao@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope(
            [text_message("5511987654321", "wamid.b1", "Olá!")], names={"5511987654321": "Maria"}
        ),
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        for email, name in (
            ("marina@example.com", "Marina Costa"),
            ("joao@example.com", "João Silva"),
        ):
            await session.execute(update(User).where(User.email == email).values(name=name))
    # João opens the customer's conversation: the audit trail records who looked.
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(agent))).json()
    await live.client.get(
        f"/api/v1/conversations/{conversation['items'][0]['id']}", headers=auth(agent)
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" else None,
    )

    await page.goto(f"{live.base_url}/account")
    assert page.url.startswith(f"{live.base_url}/login?next=/account")
    await page.fill("input[name=email]", "marina@example.com")
    await page.fill("input[name=password]", "correct horse battery")
    await page.screenshot(path=str(SCREENSHOTS / "sign-in.png"))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.base_url}/account")
    await page.click("text=Set up two-step verification")
    await page.wait_for_url(f"{live.base_url}/account/mfa/setup")
    assert await page.locator("img.qr").get_attribute("src") is not None
    await page.screenshot(path=str(SCREENSHOTS / "mfa-setup.png"), full_page=True)
    secret = (await page.inner_text("#manual-key")).replace(" ", "")
    await page.fill("input[name=code]", pyotp.TOTP(secret).now())
    await page.click("text=Turn on")
    await page.wait_for_selector("#recovery-codes")
    codes = await page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    await page.screenshot(path=str(SCREENSHOTS / "recovery-codes.png"), full_page=True)
    await page.click("text=I saved them")
    await page.wait_for_selector("text=10 of 10 recovery codes left")

    await page.click("button:has-text('Sign out')")
    await page.wait_for_url(f"{live.base_url}/login?notice=signed_out")
    await page.fill("input[name=email]", "marina@example.com")
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.base_url}/login/mfa**")
    await page.screenshot(path=str(SCREENSHOTS / "sign-in-code.png"))
    # The enrolment spent this 30-second step's code: type the next step's.
    await page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.base_url}/account")
    assert await page.locator("text=This device").count() == 1
    await page.screenshot(path=str(SCREENSHOTS / "my-account.png"), full_page=True)

    await page.goto(f"{live.base_url}/admin/users")
    await page.screenshot(path=str(SCREENSHOTS / "admin-people.png"))
    await page.goto(f"{live.base_url}/admin/audit")
    await page.wait_for_selector("text=mfa.enable")
    await page.screenshot(path=str(SCREENSHOTS / "admin-audit.png"))
    assert problems == [], problems
    await context.close()
