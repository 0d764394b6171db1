"""In Chromium: the realtime ES module (static/js/realtime.js) against the real SSE endpoint.
Customer messages arrive through signed webhooks; the browser goes offline while more arrive;
back online, it has every event exactly once, in order, as the log holds them."""

from __future__ import annotations

from tests.helpers import create_inbox, create_user, envelope, post_signed, settle, text_message
from wadesk.realtime.bus import WAKE_UP_KINDS
from wadesk.realtime.queries import current_event_id, events_after

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>realtime</title>
<script type="module" src="/__realtime_test.js"></script></head><body>realtime</body></html>"""
SCRIPT = """
import { startRealtime } from "/static/js/realtime.js";
window.__events = [];
window.__states = [];
window.addEventListener("wadesk:event", (e) => window.__events.push(e.detail));
window.addEventListener("wadesk:connection", (e) => window.__states.push(e.detail.state));
const after = new URLSearchParams(window.location.search).get("after");
window.__realtime = startRealtime({ after });
"""


async def customer_writes(live, inbox, first: int, count: int) -> None:
    for i in range(first, first + count):
        response = await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope([text_message(f"55119000{i:05d}", f"wamid.browser.{i}", f"message {i}")]),
        )
        assert response.status_code == 200


async def created(page) -> int:
    return await page.evaluate("window.__events.filter((e) => e.kind === 'message.created').length")


async def test_every_event_arrives_once_and_in_order_across_going_offline(live, browser):
    inbox = await create_inbox(live)
    other = await create_inbox(live, phone_number_id="106540352242999")
    await create_user(live, email="agent@example.com", role="agent", inbox_ids=(inbox["id"],))
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    await page.goto(f"{live.base_url}/login")
    await page.fill("input[name=email]", "agent@example.com")
    await page.fill("input[name=password]", "correct horse battery")
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)

    await page.route(
        f"{live.base_url}/__realtime_test?*",
        lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE),
    )
    await page.route(
        f"{live.base_url}/__realtime_test.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=SCRIPT),
    )
    # Some history before the page: the page resumes from its own snapshot id.
    await customer_writes(live, inbox, 0, 2)
    await settle(live)
    async with live.runtime.db.session() as session:
        snapshot = await current_event_id(session)
    await page.goto(f"{live.base_url}/__realtime_test?after={snapshot}")
    await page.wait_for_function("window.__states && window.__states.includes('online')")

    await customer_writes(live, inbox, 2, 3)
    await post_signed(  # another inbox: not this agent's
        live.client,
        other["webhook_url"],
        envelope(
            [text_message("5511988887777", "wamid.other.1", "not for you")],
            phone_number_id="106540352242999",
        ),
    )
    await page.wait_for_function(
        "window.__events.filter((e) => e.kind === 'message.created').length >= 3"
    )

    await context.set_offline(True)
    await page.wait_for_function("window.__states.at(-1) === 'offline'")
    await customer_writes(live, inbox, 5, 4)
    await settle(live)
    assert await created(page) == 3  # nothing reaches an offline browser
    await context.set_offline(False)
    await page.wait_for_function("window.__states.at(-1) === 'online'")
    await page.wait_for_function(
        "window.__events.filter((e) => e.kind === 'message.created').length >= 7"
    )
    await page.wait_for_timeout(1500)  # a duplicate would arrive now

    got = await page.evaluate("window.__events")
    async with live.runtime.db.session() as session:
        logged = await events_after(session, snapshot, 10_000)
    expected = [e for e in logged if e.inbox_id == inbox["id"] and e.kind not in WAKE_UP_KINDS]
    assert [(e["id"], e["kind"]) for e in got] == [(e.id, e.kind) for e in expected]
    assert [e["payload"] for e in got] == [e.payload for e in expected]
    assert all(e["inbox_id"] == inbox["id"] for e in got)
    texts = {e["payload"].get("message_id") for e in got if e["kind"] == "message.created"}
    assert len(texts) == 7
    states = await page.evaluate("window.__states")
    assert states[0] == "online" and "offline" in states and states[-1] == "online"
    assert "reset" not in states
    assert problems == [], problems
    await context.close()
