"""The agent inbox in Chromium: two agents in two browser contexts and a customer on the
simulator's phone page, everything over real HTTP, the live stream and the offline outbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from playwright.async_api import expect

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

CUSTOMER = "5511987654321"


async def agent_page(live: Any, browser: Any, email: str, path: str = "/inbox") -> tuple[Any, Any]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(f"{live.base_url}/login?next={path}")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{path.split('?')[0]}*")
    await page.wait_for_selector("#conversation-list", state="attached")
    return context, page


async def customer_page(live: Any, browser: Any) -> Any:
    page = await browser.new_page(viewport={"width": 1000, "height": 800})
    await page.goto(f"{live.base_url}/simulator/")
    await page.wait_for_function("document.querySelector('#number').options.length > 0")
    await page.select_option("#number", PHONE_NUMBER_ID)
    await page.fill("#new-name", "Maria Souza")
    await page.fill("#new-wa-id", CUSTOMER)
    await page.click("#new-customer button[type=submit]")
    await page.wait_for_selector("#text:not([disabled])")
    return page


async def customer_writes(page: Any, text: str) -> None:
    await page.fill("#text", text)
    await page.keyboard.press("Enter")


async def stored_at(live: Any, text: str) -> float:
    """When the customer's message was committed (polled): the start of the live path."""
    from sqlalchemy import select

    from wadesk.conversations.models import Message

    while True:
        async with live.runtime.db.session() as session:
            if await session.scalar(select(Message.id).where(Message.text == text)):
                return time.monotonic()
        await asyncio.sleep(0.01)


async def test_customer_and_two_agents_live(live, browser):
    inbox = await create_inbox(live)
    for email in ("ana@example.com", "bruno@example.com"):
        await create_user(live, email=email, role="agent", inbox_ids=(inbox["id"],))
    ana_context, ana = await agent_page(live, browser, "ana@example.com", "/inbox?folder=all")
    bruno_context, bruno = await agent_page(
        live, browser, "bruno@example.com", "/inbox?folder=unassigned"
    )
    customer = await customer_page(live, browser)

    # The customer writes: both agents' lists show the new conversation without a reload.
    await customer_writes(customer, "Olá! Meu pedido 12345 não chegou 📦")
    row = ana.locator("#conversation-list li.conv").first
    await row.wait_for(timeout=10_000)
    await bruno.locator("#conversation-list li.conv").first.wait_for(timeout=10_000)
    assert "Meu pedido 12345" in await row.inner_text()
    await row.locator("a").click()
    await ana.wait_for_selector("#thread .msg-in >> text=Meu pedido 12345")
    assert "/inbox/c/" in ana.url

    # A second customer message appears in the open thread, live.
    started = time.monotonic()
    stored = asyncio.create_task(stored_at(live, "Alguém aí? Preciso de ajuda"))
    await customer_writes(customer, "Alguém aí? Preciso de ajuda")
    await ana.wait_for_selector("#messages .msg-in >> text=Alguém aí?", timeout=10_000)
    shown = time.monotonic()
    print(
        f"customer types -> agent thread: {(shown - started) * 1000:.0f} ms;"
        f" stored -> agent thread: {(shown - await stored) * 1000:.0f} ms"
    )
    body = ana.locator("#messages .msg-in .body").last
    assert await body.inner_text() == "Alguém aí? Preciso de ajuda"

    # Ana takes it: Bruno's "Unassigned" list loses it live.
    await ana.click('#thread-chrome [data-action="assign_me"]')
    await ana.wait_for_selector('#thread-chrome [data-action="unassign"]')
    await expect(bruno.locator("#conversation-list li.conv")).to_have_count(0, timeout=10_000)

    # Ana replies with Enter: the customer sees it; their phone reads it; Ana sees ✓✓ read.
    await ana.fill("#composer-text", "Oi Maria! Vou verificar agora mesmo.")
    await ana.keyboard.press("Enter")
    await customer.wait_for_selector("text=Oi Maria! Vou verificar agora mesmo.", timeout=10_000)
    await ana.wait_for_selector("#messages .msg-out .tick-read", timeout=15_000)
    assert await ana.locator("#messages .msg-out").count() == 1
    assert await ana.locator("#messages .msg.pending").count() == 0

    # Shift+Enter makes a new line, not a message.
    await ana.fill("#composer-text", "Linha 1")
    await ana.keyboard.press("Shift+Enter")
    await ana.keyboard.type("Linha 2")
    assert await ana.input_value("#composer-text") == "Linha 1\nLinha 2"
    await ana.keyboard.press("Enter")
    await customer.wait_for_selector("text=Linha 2", timeout=10_000)

    notes = await live.client.get("/openapi.json")
    if "/api/v1/conversations/{conversation_id}/notes" in notes.json()["paths"]:
        await ana.check("[data-note-toggle]")
        await ana.fill("#composer-text", "Nota interna: cliente VIP, priorizar")
        await ana.keyboard.press("Enter")
        await ana.wait_for_selector("#messages .msg-note >> text=cliente VIP", timeout=10_000)
        await asyncio.sleep(1.5)
        sent = [o["body"] for o in live.simulator.outbound(PHONE_NUMBER_ID)]
        assert not any("cliente VIP" in str(b) for b in sent)
        assert await customer.locator("text=cliente VIP").count() == 0

    for page in (ana, bruno):
        assert page.problems == []  # type: ignore[attr-defined]
    for context in (ana_context, bruno_context):
        await context.close()


async def test_two_hundred_messages_written_offline_are_sent_once_each_in_order(live, browser):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message(CUSTOMER, "wamid.off1", "Oi")], names={CUSTOMER: "Maria"}),
    )
    await settle(live)
    context, page = await agent_page(live, browser, "ana@example.com", "/inbox?folder=all")
    await page.locator("#conversation-list li.conv a").first.click()
    await page.wait_for_selector("#composer-text")

    await context.set_offline(True)
    await page.wait_for_selector("#connection-banner.is-offline", timeout=10_000)
    texts = [f"offline message {n:03d}" for n in range(200)]
    for text in texts:
        await page.fill("#composer-text", text)
        await page.keyboard.press("Enter")
    assert await page.locator("#messages .msg.pending").count() == 200
    queued = await page.evaluate("JSON.parse(localStorage.getItem('wadesk.outbox.v1')).length")
    assert queued == 200
    assert live.simulator.outbound(PHONE_NUMBER_ID) == []

    started = time.monotonic()
    await context.set_offline(False)

    # The view is in sync when the browser's queue is empty and every bubble is a stored
    # message (the queue goes in batches: docs/benchmarks.md quotes this figure).
    async def queue_empty() -> bool:
        left = await page.evaluate("JSON.parse(localStorage.getItem('wadesk.outbox.v1')).length")
        return left == 0

    await eventually(queue_empty, timeout=120)
    await expect(page.locator("#messages .msg-out[data-id]")).to_have_count(200, timeout=60_000)
    print(f"200 queued messages stored and shown in {time.monotonic() - started:.1f} s")

    async def all_sent() -> bool:
        return len(live.simulator.outbound(PHONE_NUMBER_ID)) >= 200

    try:
        await eventually(all_sent, timeout=240)  # the API's own pace on a busy machine
    except AssertionError:
        left = await page.evaluate("JSON.parse(localStorage.getItem('wadesk.outbox.v1')).length")
        sent = len(live.simulator.outbound(PHONE_NUMBER_ID))
        raise AssertionError(f"{sent} sent, {left} still queued, {page.problems}") from None
    await expect(page.locator("#messages .msg.pending")).to_have_count(0, timeout=60_000)
    await expect(page.locator("#messages .msg-out[data-id]")).to_have_count(200, timeout=30_000)
    print(
        f"... and delivered to WhatsApp (paced per recipient) in {time.monotonic() - started:.1f} s"
    )
    await asyncio.sleep(1)
    sent = [o["body"]["text"]["body"] for o in live.simulator.outbound(PHONE_NUMBER_ID)]
    assert sent == texts  # each exactly once, in order
    shown = await page.locator("#messages .msg-out .body").all_inner_texts()
    assert shown == texts
    assert await page.evaluate("localStorage.getItem('wadesk.outbox.v1')") == "[]"
    await context.close()


async def test_after_a_disconnection_the_missed_messages_show_once_each(live, browser):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))

    async def customer(n: int, text: str) -> None:
        await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope([text_message(CUSTOMER, f"wamid.gap{n}", text)], names={CUSTOMER: "Maria"}),
        )
        await settle(live)

    await customer(0, "Oi")
    context, page = await agent_page(live, browser, "ana@example.com", "/inbox?folder=all")
    await page.locator("#conversation-list li.conv a").first.click()
    await page.wait_for_selector("#messages .msg-in >> text=Oi")
    await context.set_offline(True)
    await page.wait_for_selector("#connection-banner.is-offline", timeout=10_000)
    for n in range(1, 6):
        await customer(n, f"missed {n}")
    await context.set_offline(False)
    await expect(page.locator("#messages .msg-in")).to_have_count(6, timeout=20_000)
    await expect(page.locator("#connection-banner")).to_be_hidden(timeout=20_000)
    await asyncio.sleep(1)
    texts = await page.locator("#messages .msg-in .body").all_inner_texts()
    assert texts == ["Oi"] + [f"missed {n}" for n in range(1, 6)]
    await context.close()


async def test_a_closed_window_offers_an_approved_template(live, browser):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from wadesk.automation.models import MessageTemplate
    from wadesk.conversations.models import Conversation

    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    _, boss = await create_user(live, email="boss@example.com")
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message(CUSTOMER, "wamid.tpl1", "Oi")], names={CUSTOMER: "Maria"}),
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        await session.execute(
            update(Conversation).values(
                last_customer_message_at=datetime.now(UTC) - timedelta(hours=30)
            )
        )
        session.add(
            MessageTemplate(
                inbox_id=inbox["id"],
                name="order_update",
                language="pt_BR",
                category="UTILITY",
                status="APPROVED",
                components=[{"type": "BODY", "text": "Seu pedido {{1}} chega {{2}}."}],
            )
        )
    context, page = await agent_page(live, browser, "ana@example.com", "/inbox?folder=all")
    await page.locator("#conversation-list li.conv a").first.click()
    await expect(page.locator("#composer-text")).to_be_disabled()
    async with live.runtime.db.session() as session:
        cid = await session.scalar(select(Conversation.id))
    await page.select_option("[data-template-select]", label="order_update (pt_BR)")
    inputs = page.locator('fieldset[data-template]:not([disabled]) input[name="body"]')
    await inputs.nth(0).fill("48213")
    await inputs.nth(1).fill("amanhã")
    # A colleague changes the conversation meanwhile: the live refresh keeps Ana's half-made template.
    async with page.expect_response(lambda r: r.url.endswith(f"/inbox/c/{cid}/header")):
        changed = await live.client.patch(
            f"/api/v1/conversations/{cid}",
            json={"priority": "high"},
            headers={"Authorization": f"Bearer {boss}"},
        )
        assert changed.status_code == 200, changed.text
    await expect(inputs.nth(1)).to_have_value("amanhã")
    await page.click("[data-template-form] button")

    from wadesk.conversations.models import Message

    async def stored() -> Any:
        async with live.runtime.db.session() as session:
            return await session.scalar(select(Message).where(Message.type == "template"))

    message = await eventually(stored)
    assert message.content["name"] == "order_update" and message.content["language"] == "pt_BR"
    params = message.content["components"][0]["parameters"]
    assert [p["text"] for p in params] == ["48213", "amanhã"]
    await expect(page.locator("#messages .msg-out.type-template")).to_have_count(1)
    await context.close()
