"""The website button in Chromium: a plain shop page embeds one script tag; a click opens the
short link, which lands on wa.me with the prefilled text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.links.conftest import new_link

HOURS = {
    "time_zone": "America/Sao_Paulo",
    "days": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}


@pytest.fixture
async def shop() -> AsyncIterator[dict[str, str]]:
    """Another site on this machine (its own origin), whose page the test writes."""
    page = {"html": ""}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = page["html"].encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # "localhost" vs wadesk's "127.0.0.1": another origin, as a shop's site would be.
    page["url"] = f"http://localhost:{port}/"
    try:
        yield page
    finally:
        server.close()
        await server.wait_closed()


async def shop_page(
    browser: Any, live: Any, shop: dict[str, str], tag_attributes: str = "", lang: str = "pt-BR"
) -> Any:
    """The shop's page with the snippet pasted in."""
    shop["html"] = f"""<!doctype html><html lang="{lang}"><head><title>Loja</title>
        <script src="{live.base_url}/c/promo-natal/button.js" async {tag_attributes}></script>
        </head><body><h1>Loja da Maria</h1><p>Produtos artesanais.</p></body></html>"""
    context = await browser.new_context(viewport={"width": 1024, "height": 700})
    return await context.new_page()


async def test_the_button_opens_wa_me_with_the_prefilled_text(live, admin, browser, shop):
    link = await new_link(
        live,
        admin,
        slug="promo-natal",
        message="Olá! Quero a promoção de Natal 🎄 — ação & preço?",
        cta_label="Fale conosco",
        widget={"color": "#128C7E", "position": "bottom-right", "offset": 24},
    )
    snippets = (await live.client.get(f"/api/v1/links/{link['id']}/snippets", headers=admin)).json()
    assert snippets["website_button"] == (
        f'<script src="{live.base_url}/c/promo-natal/button.js" async></script>'
    )
    page = await shop_page(browser, live, shop)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(shop["url"])
    button = page.locator("[data-wadesk-link=promo-natal] a")
    await button.wait_for()
    assert await button.inner_text() == "Fale conosco"
    box = await button.bounding_box()
    assert box is not None and box["x"] > 1024 / 2 and box["y"] > 700 / 2
    assert await button.evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(18, 140, 126)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "link-button.png"))
    # The click opens a new tab on the short URL, which wadesk redirects to wa.me. (The test
    # machine cannot reach wa.me: the redirected request itself is what is checked.)
    async with page.context.expect_event(
        "request", lambda request: request.url.startswith("https://wa.me/")
    ) as request_info:
        await button.click()
    request = await request_info.value
    assert request.redirected_from is not None
    assert request.redirected_from.url == f"{live.base_url}/c/promo-natal"
    target = urlsplit(request.url)
    assert (target.scheme, target.netloc, target.path) == ("https", "wa.me", "/5511987654321")
    assert parse_qs(target.query) == {"text": [link["text"]]}
    assert request.url == link["wa_me_url"]
    await live.app.state.links.clicks.flush()
    stats = (await live.client.get(f"/api/v1/links/{link['id']}/stats", headers=admin)).json()
    # Headless Chromium says so in its user agent: counted, apart from people.
    assert stats["totals"]["clicks"] + stats["totals"]["bot_clicks"] == 1
    assert errors == []
    await page.context.close()


async def test_per_page_overrides_and_translated_labels(live, admin, browser, shop):
    await new_link(
        live,
        admin,
        slug="promo-natal",
        cta_label="Chat on WhatsApp",
        cta_translations={"hi": "हमसे बात करें", "pt": "Fale conosco"},
    )
    page = await shop_page(browser, live, shop, 'data-position="bottom-left"', lang="hi")
    await page.goto(shop["url"])
    button = page.locator("[data-wadesk-link=promo-natal] a")
    await button.wait_for()
    assert await button.inner_text() == "हमसे बात करें"
    box = await button.bounding_box()
    assert box is not None and box["x"] < 1024 / 2
    await page.context.close()


async def test_the_button_hides_outside_business_hours(live, admin, browser, shop):
    await new_link(
        live, admin, slug="promo-natal", widget={"hide_outside_hours": True, "hours": HOURS}
    )
    page = await shop_page(browser, live, shop)
    # Sunday 12:00 in São Paulo: closed.
    await page.clock.set_fixed_time("2025-12-21T15:00:00Z")
    await page.goto(shop["url"])
    host = page.locator("[data-wadesk-link=promo-natal]")
    await host.wait_for(state="attached")
    assert await host.get_attribute("data-open") == "false"
    assert not await page.locator("[data-wadesk-link=promo-natal] a").is_visible()
    # Monday 10:00 there: open (the button checks every minute).
    await page.clock.set_fixed_time("2025-12-22T13:00:00Z")
    await page.reload()
    await page.locator("[data-wadesk-link=promo-natal] a").wait_for()
    assert await host.get_attribute("data-open") == "true"
    await page.context.close()


async def test_a_link_that_ended_leaves_the_page_intact(live, admin, browser, shop):
    link = await new_link(live, admin, slug="promo-natal")
    await live.client.post(f"/api/v1/links/{link['id']}/deactivate", headers=admin)
    page = await shop_page(browser, live, shop)
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text))
    await page.goto(shop["url"])
    await page.wait_for_function("document.readyState === 'complete'")
    assert await page.locator("[data-wadesk-link]").count() == 0
    assert await page.locator("h1").inner_text() == "Loja da Maria"
    assert any("is inactive" in w for w in warnings)
    await page.context.close()
