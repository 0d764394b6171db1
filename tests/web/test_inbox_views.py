"""The inbox pages over real HTTP: who sees what, escaping, CSRF, the fragments the browser swaps."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)
from tests.web.client import csrf_of, sign_in
from wadesk.conversations.models import Conversation, Message


async def _customer_writes(live, inbox, wa_id, wamid, body, name="Maria"):
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope(
            [text_message(wa_id, wamid, body)],
            names={wa_id: name},
            phone_number_id=inbox["phone_number_id"],
        ),
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        message = await session.scalar(select(Message).where(Message.external_id == wamid))
        return message.conversation_id


async def test_an_agent_sees_the_inbox_list_and_thread_of_their_inbox(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid = await _customer_writes(live, inbox, "5511987654321", "wamid.v1", "Olá!\nTudo bem?")
    agent = await sign_in(live, "ana@example.com")
    landing = await agent.get("/")
    assert landing.headers["location"] == "/inbox"
    page = await agent.get("/inbox?folder=unassigned")
    assert page.status_code == 200, page.text
    assert f'id="conv-{cid}"' in page.text
    assert "Olá!" in page.text
    assert 'data-last-event-id="' in page.text
    assert '<script src="/static/vendor/htmx.min.js' in page.text
    htmx = await agent.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]
    # "Mine" is empty until the agent takes it.
    mine = await agent.get("/inbox/list?folder=mine")
    assert f'id="conv-{cid}"' not in mine.text
    thread = await agent.get(f"/inbox/c/{cid}")
    assert thread.status_code == 200
    assert 'id="composer"' in thread.text and "Tudo bem?" in thread.text
    csrf = csrf_of(thread.text)
    taken = await agent.post(
        f"/inbox/c/{cid}/update",
        data={"csrf_token": csrf, "action": "assign_me"},
        headers={"HX-Request": "true"},
    )
    assert taken.status_code == 200 and "Unassign" in taken.text
    mine = await agent.get("/inbox/list?folder=mine")
    assert f'id="conv-{cid}"' in mine.text
    resolved = await agent.post(
        f"/inbox/c/{cid}/update", data={"csrf_token": csrf, "action": "resolve"}
    )
    assert resolved.status_code == 303
    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, cid)
        assert conversation.status == "resolved"
    row = await agent.get(f"/inbox/row/{cid}?folder=mine&status=open")
    assert row.status_code == 200 and f'id="conv-{cid}"' not in row.text
    row = await agent.get(f"/inbox/row/{cid}?folder=mine&status=resolved")
    assert f'id="conv-{cid}"' in row.text
    await agent.aclose()


async def test_another_inboxs_conversation_is_a_404_everywhere(live):
    mine = await create_inbox(live)
    other = await create_inbox(live, phone_number_id="106540352242999")
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(mine["id"],))
    cid = await _customer_writes(live, other, "5511900000001", "wamid.o1", "secret of the other")
    async with live.runtime.db.session() as session:
        mid = await session.scalar(select(Message.id).where(Message.external_id == "wamid.o1"))
    agent = await sign_in(live, "ana@example.com")
    for url in (
        f"/inbox/c/{cid}",
        f"/inbox/c/{cid}/thread",
        f"/inbox/c/{cid}/header",
        f"/inbox/c/{cid}/messages",
        f"/inbox/c/{cid}/messages?after=0",
        f"/inbox/row/{cid}",
        f"/inbox/m/{mid}",
    ):
        response = await agent.get(url)
        assert response.status_code == 404, url
        assert "secret of the other" not in response.text
    listing = await agent.get("/inbox?folder=all")
    assert "secret of the other" not in listing.text
    search = await agent.get("/inbox/list?folder=all&q=secret")
    assert "secret of the other" not in search.text
    csrf = csrf_of((await agent.get("/inbox")).text)
    update = await agent.post(
        f"/inbox/c/{cid}/update", data={"csrf_token": csrf, "action": "resolve"}
    )
    assert update.status_code == 404
    async with live.runtime.db.session() as session:
        assert (await session.get(Conversation, cid)).status == "open"
    await agent.aclose()


async def test_customer_text_is_escaped_in_the_list_and_the_thread(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cid = await _customer_writes(live, inbox, "5511987650000", "wamid.e1", evil, name="<b>Bad</b>")
    agent = await sign_in(live, "ana@example.com")
    for url in ("/inbox?folder=all", f"/inbox/c/{cid}", f"/inbox/c/{cid}/messages?after=0"):
        html = (await agent.get(url)).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Bad</b>" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = await agent.get(f"/inbox/c/{cid}")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<script>(?!</script>)", page.text), "no inline script"
    await agent.aclose()


async def test_actions_need_the_csrf_token_and_write_permission(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid = await _customer_writes(live, inbox, "5511987651111", "wamid.c1", "hello")
    agent = await sign_in(live, "ana@example.com")
    no_token = await agent.post(f"/inbox/c/{cid}/update", data={"action": "resolve"})
    assert no_token.status_code == 403
    wrong = await agent.post(
        f"/inbox/c/{cid}/update", data={"action": "resolve", "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403
    # The JSON API the composer uses needs the header token too.
    sent = await agent.post(f"/api/v1/conversations/{cid}/messages", json={"text": "hi"})
    assert sent.status_code == 403 and sent.json()["error"]["code"] == "csrf_failed"
    async with live.runtime.db.session() as session:
        assert (await session.get(Conversation, cid)).status == "open"
    await agent.aclose()


async def test_thread_fragments_page_backwards_and_forwards(live):
    inbox = await create_inbox(live)
    _, token = await create_user(
        live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    cid = await _customer_writes(live, inbox, "5511987652222", "wamid.p0", "first")
    for n in range(1, 45):
        await _customer_writes(live, inbox, "5511987652222", f"wamid.p{n}", f"line {n}")
    agent = await sign_in(live, "ana@example.com")
    page = (await agent.get(f"/inbox/c/{cid}")).text
    ids = [int(i) for i in re.findall(r'id="m-(\d+)"', page)]
    assert len(ids) == 40 and ids == sorted(ids)
    older = (await agent.get(f"/inbox/c/{cid}/messages?before={ids[0]}")).text
    assert ">first<" in older
    reply = await live.client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"text": "answer"},
        headers={**auth(token), "Idempotency-Key": "k-123"},
    )
    assert reply.status_code == 201
    newer = (await agent.get(f"/inbox/c/{cid}/messages?after={ids[-1]}")).text
    assert newer.count('class="msg ') == 1 and "answer" in newer
    one = (await agent.get(f"/inbox/m/{reply.json()['id']}")).text
    assert "tick-queued" in one or "tick-sent" in one
    await agent.aclose()


async def test_the_composer_follows_the_24_hour_window(live):
    from datetime import UTC, datetime, timedelta

    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid = await _customer_writes(live, inbox, "5511987653333", "wamid.w1", "hello")
    agent = await sign_in(live, "ana@example.com")
    open_page = (await agent.get(f"/inbox/c/{cid}")).text
    assert 'data-window="open"' in open_page and "data-countdown" not in open_page
    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, cid)
        conversation.last_customer_message_at = datetime.now(UTC) - timedelta(hours=23, minutes=20)
    closing = (await agent.get(f"/inbox/c/{cid}")).text
    assert 'data-window="closing"' in closing and "data-countdown=" in closing
    assert "The 24-hour window closes in" in closing
    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, cid)
        conversation.last_customer_message_at = datetime.now(UTC) - timedelta(hours=25)
    closed = (await agent.get(f"/inbox/c/{cid}")).text
    assert 'data-window="closed"' in closed and "The 24-hour window is closed." in closed
    assert re.search(r'<textarea id="composer-text"[^>]*disabled', closed)
    assert "data-template-form" not in closed
    # With an approved template the closed window offers it, with its parameters.
    from wadesk.automation.models import MessageTemplate

    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, cid)
        for name, status in (("order_update", "APPROVED"), ("promo", "REJECTED")):
            session.add(
                MessageTemplate(
                    inbox_id=conversation.inbox_id,
                    name=name,
                    language="pt_BR",
                    category="UTILITY",
                    status=status,
                    components=[{"type": "BODY", "text": "Seu pedido {{1}} chega {{2}}."}],
                )
            )
    picker = (await agent.get(f"/inbox/c/{cid}")).text
    assert "data-template-form" in picker and 'data-name="order_update"' in picker
    assert picker.count('name="body" required') == 2 and "promo" not in picker
    await agent.aclose()


async def test_a_missing_htmx_answers_with_a_clear_error(settings, monkeypatch, tmp_path):
    import httpx

    from wadesk.app import create_app

    monkeypatch.setenv("WADESK_NODE_MODULES", str(tmp_path / "nowhere"))
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 503
    assert "make assets" in response.text
