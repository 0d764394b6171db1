"""The inbox's contact panel form, emoji panel and @mention list, in Chromium over real HTTP."""

from __future__ import annotations

import os
from typing import Any

from playwright.async_api import expect
from sqlalchemy import select

from tests.browser.test_inbox import agent_page
from tests.helpers import (
    PHONE_NUMBER_ID,
    create_inbox,
    create_user,
    envelope,
    eventually,
    post_signed,
    settle,
    text_message,
)
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Mention, Message

CUSTOMER = "5511987654321"


async def _world(live: Any) -> tuple[int, int, int]:
    """An inbox with Bruno (signed in below) and Ana (to mention), and one customer's message."""
    inbox = await create_inbox(live)
    ana_id, _ = await create_user(
        live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    await create_user(live, email="bruno@example.com", role="agent", inbox_ids=(inbox["id"],))
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message(CUSTOMER, "wamid.x1", "Oi")], names={CUSTOMER: "Maria"}),
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        contact = await session.get(Contact, conversation.contact_id)
        contact.attributes = {"plan": "gold", "orders": 3}
        return conversation.id, contact.id, ana_id


def _unexpected(problems: list[str]) -> list[str]:
    # The refused form's 422 is logged by Chromium as a failed request: that one is expected.
    return [p for p in problems if "status of 422" not in p]


async def test_edit_the_contact_in_the_panel(live, browser):
    cid, contact_id, _ = await _world(live)
    context, page = await agent_page(live, browser, "bruno@example.com", f"/inbox/c/{cid}")
    ana_context, ana = await agent_page(
        live, browser, "ana@example.com", f"/inbox/c/{cid}?folder=all"
    )
    await expect(ana.locator(f"#conv-{cid}")).to_contain_text("Maria")
    panel = page.locator("#contact-panel")
    await expect(panel.locator("[data-attributes]")).to_contain_text("gold")
    await panel.locator("[data-edit-contact]").click()
    form = panel.locator("#contact-form")
    await expect(form).to_be_visible()
    await expect(form.locator("[data-contact-name]")).to_be_focused()

    # A bad name is refused inline and what was typed stays.
    await form.locator("[data-contact-name]").fill("Maria Souza")
    blank = form.locator("[data-new-attr]").last
    await blank.locator("input[name=attr_key]").fill("bad key!")
    await blank.locator("input[name=attr_value]").fill("kept")
    await form.locator("button[type=submit]").click()
    alert = panel.locator("#contact-errors")
    await expect(alert).to_contain_text("is not a valid attribute name")
    await expect(alert).to_be_focused()
    await expect(form.locator("[data-contact-name]")).to_have_value("Maria Souza")
    await expect(form.locator('input[name=attr_key][value="bad key!"]')).to_have_count(1)

    # Fix it, change a value, add one more row, remove "orders": saved, shown, stored.
    rows = form.locator(".attr-row")
    await (
        rows.filter(has=page.locator('input[value="bad key!"]'))
        .locator("input[name=attr_key]")
        .fill("monthly_spend")
    )
    await (
        rows.filter(has=page.locator('input[value="kept"]'))
        .locator("input[name=attr_value]")
        .fill("1250")
    )
    plan = rows.filter(has=page.locator('input[name=attr_original][value="plan"]'))
    await plan.locator("input[name=attr_value]").fill("platinum")
    orders = rows.filter(has=page.locator('input[name=attr_original][value="orders"]'))
    await orders.locator("input[name=remove]").check()
    await form.locator("[data-add-attr]").click()
    added = form.locator("[data-new-attr]").last
    await expect(added.locator("input[name=attr_key]")).to_be_focused()
    await page.keyboard.type("city")
    await added.locator("input[name=attr_value]").fill("Recife")
    shot = os.environ.get("WADESK_INBOX_EDIT_SCREENSHOT")
    if shot:
        await page.screenshot(path=shot)
    await form.locator("button[type=submit]").click()
    attributes = panel.locator("[data-attributes]")
    await expect(attributes).to_contain_text("platinum")
    await expect(attributes).to_contain_text("Recife")
    await expect(attributes).not_to_contain_text("orders")
    await expect(panel.locator(".contact-name")).to_have_text("Maria Souza")
    await expect(panel.locator("[data-edit-contact]")).to_be_focused()
    async with live.runtime.db.session() as session:
        contact = await session.get(Contact, contact_id)
        assert contact.name == "Maria Souza"
        assert contact.attributes == {"plan": "platinum", "monthly_spend": 1250, "city": "Recife"}
    # The thread header follows the new name (the contact.updated event).
    await expect(page.locator("#thread-title")).to_have_text("Maria Souza", timeout=10_000)
    await expect(panel.locator("[data-edit-contact]")).to_be_focused()  # the live refresh kept it
    # A colleague with the same conversation open sees the change live.
    await expect(ana.locator("#contact-panel [data-attributes]")).to_contain_text(
        "platinum", timeout=10_000
    )
    # ... and the conversation list's row takes the new name too.
    await expect(ana.locator(f"#conv-{cid}")).to_contain_text("Maria Souza", timeout=10_000)
    assert _unexpected(page.problems) == []  # type: ignore[attr-defined]
    assert ana.problems == []  # type: ignore[attr-defined]
    await context.close()
    await ana_context.close()


async def test_pick_an_emoji_and_mention_a_colleague_in_a_note(live, browser):
    cid, _, ana_id = await _world(live)
    context, page = await agent_page(live, browser, "bruno@example.com", f"/inbox/c/{cid}")
    textarea = page.locator("#composer-text")
    toggle = page.locator("[data-emoji-toggle]")
    emoji_panel = page.locator("#emoji-panel")

    # The keyboard: open, Escape closes and gives the focus back to the button.
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(emoji_panel).to_be_visible()
    await expect(emoji_panel.locator("[data-emoji]").first).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(emoji_panel).to_be_hidden()
    await expect(toggle).to_be_focused()
    assert await toggle.get_attribute("aria-expanded") == "false"

    # Insert at the cursor: between two words, then with the arrow keys and Enter.
    await textarea.fill("Pedido enviado!")
    await textarea.evaluate("t => t.setSelectionRange(6, 6)")
    await toggle.click()
    await emoji_panel.locator('[data-emoji="📦"]').click()
    await expect(emoji_panel).to_be_hidden()
    await expect(textarea).to_have_value("Pedido📦 enviado!")
    await expect(textarea).to_be_focused()
    await page.keyboard.press("End")
    await toggle.click()
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("Enter")  # the second emoji: 😃
    await expect(textarea).to_have_value("Pedido📦 enviado!😃")
    await textarea.press("Enter")

    async def sent() -> Any:
        outbound = live.simulator.outbound(PHONE_NUMBER_ID)
        return [o["body"]["text"]["body"] for o in outbound if o["body"].get("type") == "text"]

    assert await eventually(sent) == ["Pedido📦 enviado!😃"]
    await expect(page.locator("#messages .msg-out .body").last).to_have_text("Pedido📦 enviado!😃")

    # A private note: "@an" lists Ana; Enter picks her handle; the note mentions her.
    await page.check("[data-note-toggle]")
    await textarea.fill("")
    await textarea.type("Pode ver isso @an")
    mention_list = page.locator("#mention-list")
    await expect(mention_list).to_be_visible()
    await expect(mention_list.locator("[role=option]")).to_have_count(1)
    await expect(mention_list.locator("[role=option]").first).to_contain_text("ana")
    assert await textarea.get_attribute("aria-activedescendant") == "mention-option-0"
    await textarea.press("Enter")
    await expect(mention_list).to_be_hidden()
    await expect(textarea).to_have_value("Pode ver isso @ana ")
    await textarea.type("por favor?")
    await textarea.press("Enter")
    await page.wait_for_selector("#messages .msg-note >> text=por favor?", timeout=10_000)

    async with live.runtime.db.session() as session:
        note = await session.scalar(select(Message).where(Message.type == "note"))
        assert note.text == "Pode ver isso @ana por favor?"
        assert note.content["mentions"] == [ana_id]
        mention = await session.scalar(select(Mention).where(Mention.message_id == note.id))
        assert mention is not None and mention.user_id == ana_id
    assert not any("@ana" in str(o["body"]) for o in live.simulator.outbound(PHONE_NUMBER_ID))
    assert _unexpected(page.problems) == []  # type: ignore[attr-defined]
    await context.close()
