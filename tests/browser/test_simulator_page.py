"""The simulator's customer phone page, in Chromium: a person chats as a customer with wadesk."""

from __future__ import annotations

from tests.browser.conftest import SCREENSHOTS
from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, create_user, eventually, settle


async def test_a_customer_chats_from_the_phone_page(live, browser):
    await create_inbox(live)
    _, token = await create_user(live, email="agent@example.com")
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{live.base_url}/simulator/")
    await page.wait_for_function("document.querySelector('#number').options.length > 0")
    await page.select_option("#number", PHONE_NUMBER_ID)
    await page.fill("#new-name", "Maria <b>Souza</b>")
    await page.fill("#new-wa-id", "5511987654321")
    await page.click("#new-customer button[type=submit]")
    await page.wait_for_selector("#text:not([disabled])")
    await page.fill("#text", "Olá! Onde está meu pedido 12345? 📦")
    await page.keyboard.press("Enter")
    await settle(live)

    async def conversation():
        items = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()[
            "items"
        ]
        return items[0] if items else None

    found = await eventually(conversation)
    assert found["contact_name"] == "Maria <b>Souza</b>"
    reply = await live.client.post(
        f"/api/v1/conversations/{found['id']}/messages",
        json={"text": "Seu pedido chega amanhã, Maria!"},
        headers=auth(token),
    )
    assert reply.status_code == 201
    await page.wait_for_selector("text=Seu pedido chega amanhã, Maria!", timeout=10_000)
    # The customer's name is shown as text, never interpreted as HTML.
    assert await page.locator("#customers b").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "simulator-phone.png"))
    assert errors == []
