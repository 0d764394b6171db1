"""In Chromium: the link builder's live preview follows what is typed (Hindi, emoji), the link
is created, its page shows the QR code and copy-ready snippets. Screenshots for the docs."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import SCREENSHOTS
from tests.helpers import create_inbox, create_user


async def test_live_preview_then_create_and_share(live: Any, browser: Any) -> None:
    inbox = await create_inbox(live)
    await create_user(live, email="sup@example.com", role="supervisor", inbox_ids=(inbox["id"],))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

    await page.goto(f"{live.base_url}/login?next=/links/new")
    await page.fill("input[name=email]", "sup@example.com")
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.base_url}/links/new")

    message = "नमस्ते! मुझे दिवाली ऑफ़र चाहिए 🪔"
    await page.fill("#message", message)
    await page.fill("#cta_label", "हमसे बात करें")
    await page.fill("input[name=campaign]", "diwali-2026")
    await page.fill("#slug", "diwali")
    # The preview comes from the API's own validation and encoding, as the customer will see it.
    bubble = page.locator("#pv-text")
    await bubble.filter(has_text=message).wait_for()
    assert (await bubble.inner_text()).startswith(message)
    assert "(ref: REF123)" in await bubble.inner_text()
    assert await page.locator("#pv-cta").inner_text() == "हमसे बात करें"
    url = await page.locator("#pv-url").inner_text()
    assert url.startswith("https://wa.me/15550783881?text=%E0%A4%A8%E0%A4%AE")
    assert await page.locator("#message-count").inner_text() == str(len(message))

    # A bad number is explained in the preview, and nothing is lost from the form.
    await page.select_option("#inbox_id", "")
    await page.fill("#phone", "123")
    await page.locator("#pv-error").filter(has_text="number").wait_for()
    # (Chromium logs the preview's 422 answers as console errors: expected here.)
    problems = [p for p in problems if "status of 422" not in p]
    await page.fill("#phone", "+55 11 98765-4321")
    await page.locator("#pv-url").filter(has_text="wa.me/5511987654321").wait_for()
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / "link-builder.png"))

    await page.click("button[value=save]")
    await page.wait_for_url("**/links/*?notice=link_created")
    assert await page.locator("#short-url").input_value() == f"{live.base_url}/c/diwali"
    qr = page.locator("#qr")
    await qr.wait_for()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "button.js" in await page.locator("#snip-script").input_value()
    await page.screenshot(path=str(SCREENSHOTS / "link-detail.png"), full_page=True)
    assert problems == []
    await context.close()
