"""Screenshots of the inbox with realistic content (docs/screenshots/), desktop and phone, and a
check that the layout holds: one pane at a time on a phone, the Portuguese interface, no
horizontal scrolling at 390 px or at 200% zoom."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw
from playwright.async_api import expect
from sqlalchemy import update

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_inbox import agent_page
from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, create_user, eventually, settle
from wadesk.accounts.models import User
from wadesk.inboxes.models import Inbox

MARIA, CARLOS, EMMA, JOAO = "5511987654321", "5491155556666", "447700900123", "5521998887777"


def receipt_png() -> bytes:
    image = Image.new("RGB", (480, 360), "#f8fafc")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 460, 340), outline="#0f766e", width=4)
    draw.rectangle((20, 20, 460, 80), fill="#0f766e")
    for n, y in enumerate(range(110, 300, 38)):
        draw.rectangle((50, y, 300 - n * 25, y + 14), fill="#94a3b8")
        draw.rectangle((360, y, 430, y + 14), fill="#334155")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def seed(live: Any) -> tuple[dict[str, Any], str]:
    inbox = await create_inbox(live)
    async with live.runtime.db.session() as session:
        await session.execute(
            update(Inbox).where(Inbox.id == inbox["id"]).values(name="Loja Aurora")
        )
    live.runtime.registry.invalidate()
    _, admin = await create_user(live, email="marina@example.com", role="admin")
    _, ana = await create_user(
        live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    async with live.runtime.db.session() as session:
        await session.execute(
            update(User).where(User.email == "ana@example.com").values(name="Ana Lima")
        )
    sim = live.simulator

    async def says(wa_id: str, name: str, message: dict[str, Any]) -> str:
        wamid: str = await sim.customer_sends(PHONE_NUMBER_ID, wa_id, name, message)
        return wamid

    await says(EMMA, "Emma Clarke", {"type": "text", "text": "Hi! Do you ship to London?"})
    await says(JOAO, "João Pereira", {"type": "text", "text": "Obrigado, chegou tudo certo!"})
    await says(
        CARLOS, "Carlos Gómez", {"type": "text", "text": "Hola, ¿tienen la talla M en azul?"}
    )
    first = await says(
        MARIA,
        "Maria Souza",
        {"type": "text", "text": "Olá! Meu pedido #48213 ainda não chegou 😟\nPodem verificar?"},
    )
    await says(
        MARIA,
        "Maria Souza",
        {
            "type": "image",
            "data": receipt_png(),
            "mime_type": "image/png",
            "caption": "Comprovante do pagamento",
        },
    )
    await says(
        MARIA,
        "Maria Souza",
        {
            "type": "location",
            "latitude": -23.5614,
            "longitude": -46.6559,
            "name": "Casa",
            "address": "Av. Paulista, 1578 - São Paulo",
        },
    )
    await says(
        MARIA,
        "Maria Souza",
        {
            "type": "document",
            "data": b"%PDF-1.4\n% nota fiscal\n" + b"0" * 48_000,
            "mime_type": "application/pdf",
            "filename": "nota-fiscal-48213.pdf",
        },
    )
    await settle(live)

    async def conversation_of(name: str) -> int:
        items = (
            await live.client.get("/api/v1/conversations?limit=50", headers=auth(admin))
        ).json()["items"]
        found = [c["id"] for c in items if c["contact_name"] == name]
        return found[0] if found else 0

    maria = await eventually(lambda: conversation_of("Maria Souza"))
    carlos = await conversation_of("Carlos Gómez")
    for name, color in (("entrega", "#f59e0b"), ("vip", "#7c3aed"), ("ventas", "#0ea5e9")):
        await live.client.post(
            "/api/v1/labels", json={"name": name, "color": color}, headers=auth(admin)
        )
    me = (await live.client.get("/api/v1/me", headers=auth(ana))).json()["id"]
    await live.client.patch(
        f"/api/v1/conversations/{maria}",
        json={"labels": ["entrega", "vip"], "priority": "high", "assignee_id": me},
        headers=auth(admin),
    )
    await live.client.patch(
        f"/api/v1/conversations/{carlos}",
        json={"labels": ["ventas"], "priority": "urgent"},
        headers=auth(admin),
    )
    reply = await live.client.post(
        f"/api/v1/conversations/{maria}/messages",
        json={
            "text": "Oi Maria! Já localizei seu pedido: ele saiu ontem e chega amanhã até 18h. 🚚",
        },
        headers={**auth(ana), "Idempotency-Key": "shot-1"},
    )
    assert reply.status_code == 201, reply.text
    await live.client.post(
        f"/api/v1/conversations/{maria}/messages",
        json={"type": "reaction", "content": {"message_id": reply.json()["id"] - 1, "emoji": "🙏"}},
        headers=auth(ana),
    )

    async def delivered() -> bool:
        return len(sim.outbound(PHONE_NUMBER_ID)) >= 1

    await eventually(delivered)
    sim.customer_reads(PHONE_NUMBER_ID, MARIA)
    await says(
        MARIA,
        "Maria Souza",
        {"type": "text", "text": "Perfeito, muito obrigada! 🙌", "reply_to": first},
    )
    await live.client.post(
        f"/api/v1/conversations/{maria}/notes",
        json={"text": "Cliente VIP: se atrasar de novo, oferecer frete grátis no próximo pedido."},
        headers=auth(ana),
    )
    await settle(live)
    return {"maria": maria}, "ana@example.com"


async def test_inbox_screenshots_desktop_and_phone(live, browser):
    ids, email = await seed(live)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    context, page = await agent_page(live, browser, email, f"/inbox/c/{ids['maria']}?folder=all")
    await page.wait_for_selector("#messages .type-image img")
    await expect(page.locator("#messages .tick-read")).to_have_count(1, timeout=10_000)
    await page.wait_for_timeout(300)
    await page.screenshot(path=str(SCREENSHOTS / "inbox-desktop.png"))
    await page.goto(page.url)  # a plain load of the inbox (not the sign-in's redirect)
    await page.wait_for_selector("#messages .type-image img")
    paint = await page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
    )
    print(f"first contentful paint of the inbox: {paint:.0f} ms")
    # Keyboard: ? lists the shortcuts, j/k move through the list, r focuses the composer.
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator("#shortcuts")).to_be_hidden()
    await page.keyboard.press("j")
    await expect(page.locator("#thread")).not_to_have_attribute(
        "data-conversation-id", str(ids["maria"])
    )
    await page.keyboard.press("k")
    await expect(page.locator("#thread")).to_have_attribute(
        "data-conversation-id", str(ids["maria"])
    )
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.press("Escape")
    # 200% zoom on a 1440 px screen behaves like a 720 px window: one pane, no sideways scroll.
    await page.set_viewport_size({"width": 720, "height": 450})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await expect(page.locator("#thread-pane")).to_be_visible()
    await expect(page.locator(".pane-list")).to_be_hidden()
    assert page.problems == []  # type: ignore[attr-defined]
    await context.close()

    phone = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="pt-BR",
    )
    mobile = await phone.new_page()
    await mobile.goto(f"{live.base_url}/login?next=/inbox%3Ffolder%3Dall")
    await mobile.fill("input[name=email]", email)
    await mobile.fill("input[name=password]", "correct horse battery")
    await mobile.click("button[type=submit]")
    await mobile.wait_for_selector("#conversation-list li.conv")
    assert await mobile.evaluate("document.documentElement.lang") == "pt-BR"
    await expect(mobile.locator("#search")).to_have_attribute(
        "placeholder", "Buscar nome, telefone ou mensagem…"
    )
    await expect(mobile.locator("#thread-pane")).to_be_hidden()
    assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await mobile.screenshot(path=str(SCREENSHOTS / "inbox-phone-list.png"))
    await mobile.locator(f"#conv-{ids['maria']} a").click()
    await mobile.wait_for_selector("#messages .type-image img")
    await expect(mobile.locator(".pane-list")).to_be_hidden()
    await mobile.wait_for_timeout(300)
    assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await mobile.screenshot(path=str(SCREENSHOTS / "inbox-phone-thread.png"))
    await mobile.locator("[data-back]").click()
    await expect(mobile.locator(".pane-list")).to_be_visible()
    await phone.close()
