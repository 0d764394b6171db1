"""The REST API: shapes, pagination, access control, scopes, errors, media, fuzzed input."""

from __future__ import annotations

import asyncio
import base64

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.helpers import (
    PHONE_NUMBER_ID,
    auth,
    create_inbox,
    create_user,
    envelope,
    eventually,
    post_signed,
    settle,
    text_message,
)
from wadesk.accounts.models import ApiToken
from wadesk.audit.models import AuditEvent
from wadesk.conversations.models import Message
from wadesk.db import utcnow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def seed_conversations(live, inbox, n: int) -> None:
    for i in range(n):
        await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope(
                [
                    text_message(
                        f"1415555{i:04d}", f"wamid.seed{i}", f"hello {i}", ts=1_700_000_000 + i
                    )
                ]
            ),
        )
    await settle(live)


async def test_requests_without_a_valid_token_get_401_with_the_error_shape(live):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await live.client.get("/api/v1/conversations", headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) >= {"code", "message"}


async def test_conversation_list_paginates_with_cursors_newest_first(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    await seed_conversations(live, inbox, 7)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await live.client.get("/api/v1/conversations", params=params, headers=auth(token))
        ).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len({c["id"] for c in seen}) == 7
    activity = [c["last_activity_at"] for c in seen]
    assert activity == sorted(activity, reverse=True)
    bad = await live.client.get(
        "/api/v1/conversations", params={"cursor": "garbage"}, headers=auth(token)
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_agents_see_only_their_inboxes_everything_else_is_404(live):
    mine = await create_inbox(live, phone_number_id="111", app_secret="s1")
    other = await create_inbox(live, phone_number_id="222", app_secret="s2")
    await post_signed(
        live.client,
        mine["webhook_url"],
        envelope([text_message("14155550001", "wamid.m", "a")], phone_number_id="111"),
        secret="s1",
    )
    await post_signed(
        live.client,
        other["webhook_url"],
        envelope([text_message("14155550002", "wamid.o", "b")], phone_number_id="222"),
        secret="s2",
    )
    await settle(live)
    _, token = await create_user(
        live,
        email="agent@example.com",
        role="agent",
        scopes=("read", "write"),
        inbox_ids=(mine["id"],),
    )
    listed = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()["items"]
    assert [c["inbox_id"] for c in listed] == [mine["id"]]
    async with live.runtime.db.session() as session:
        foreign = await session.scalar(select(Message).where(Message.external_id == "wamid.o"))
    for path in (
        f"/api/v1/conversations/{foreign.conversation_id}",
        f"/api/v1/conversations/{foreign.conversation_id}/messages",
        f"/api/v1/messages/{foreign.id}/media",
        f"/api/v1/inboxes/{other['id']}",
    ):
        response = await live.client.get(path, headers=auth(token))
        assert response.status_code == 404, path
    send = await live.client.post(
        f"/api/v1/conversations/{foreign.conversation_id}/messages",
        json={"text": "x"},
        headers=auth(token),
    )
    assert send.status_code == 404
    contacts = (await live.client.get("/api/v1/contacts", headers=auth(token))).json()["items"]
    assert [c["phone_e164"] for c in contacts] == ["+14155550001"]
    # One number, one contact: still refused, without naming a contact the agent may not see.
    hidden = await live.client.post(
        "/api/v1/contacts", json={"phone": "+1 415 555 0002"}, headers=auth(token)
    )
    assert hidden.status_code == 409
    assert str(foreign.conversation_id) not in hidden.json()["error"]["message"]
    assert "(id " not in hidden.json()["error"]["message"]
    seen = await live.client.post(
        "/api/v1/contacts", json={"phone": "14155550001"}, headers=auth(token)
    )
    assert (
        seen.status_code == 409 and f"(id {contacts[0]['id']})" in seen.json()["error"]["message"]
    )
    admin_only = await live.client.get("/api/v1/webhook-deliveries", headers=auth(token))
    assert admin_only.status_code == 403


async def test_read_only_tokens_cannot_write_and_revoked_or_expired_tokens_stop_working(live):
    inbox = await create_inbox(live)
    await seed_conversations(live, inbox, 1)
    _, reader = await create_user(live, email="reader@example.com", scopes=("read",))
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(reader))).json()[
        "items"
    ][0]
    response = await live.client.patch(
        f"/api/v1/conversations/{conversation['id']}",
        json={"status": "resolved"},
        headers=auth(reader),
    )
    assert response.status_code == 403
    async with live.runtime.db.session() as session:
        token = await session.scalar(select(ApiToken))
        token.revoked_at = utcnow()
    assert (await live.client.get("/api/v1/conversations", headers=auth(reader))).status_code == 401


async def test_conversation_updates_are_validated_audited_and_reversible(live):
    inbox = await create_inbox(live)
    await seed_conversations(live, inbox, 1)
    admin_id, token = await create_user(live, email="admin@example.com")
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()[
        "items"
    ][0]
    url = f"/api/v1/conversations/{conversation['id']}"
    updated = await live.client.patch(
        url,
        json={"assignee_id": admin_id, "labels": ["billing", "vip"], "priority": "high"},
        headers=auth(token),
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["assignee_id"], body["labels"], body["priority"]) == (
        admin_id,
        ["billing", "vip"],
        "high",
    )
    by_label = await live.client.get(
        "/api/v1/conversations", params={"label": "vip"}, headers=auth(token)
    )
    assert len(by_label.json()["items"]) == 1
    mine = await live.client.get(
        "/api/v1/conversations", params={"assignee": "me"}, headers=auth(token)
    )
    assert len(mine.json()["items"]) == 1
    assert (
        await live.client.patch(url, json={"assignee_id": 999999}, headers=auth(token))
    ).status_code == 422
    assert (
        await live.client.patch(url, json={"status": "snoozed"}, headers=auth(token))
    ).status_code == 422
    assert (
        await live.client.patch(url, json={"status": "closed"}, headers=auth(token))
    ).status_code == 422
    resolved = await live.client.patch(
        url, json={"status": "resolved", "assignee_id": None}, headers=auth(token)
    )
    assert resolved.json()["status"] == "resolved" and resolved.json()["assignee_id"] is None
    # The customer writes again: a new conversation opens; the old one cannot be reopened over it.
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("14155550000", "wamid.again", "me again")]),
    )
    await settle(live)
    reopen = await live.client.patch(url, json={"status": "open"}, headers=auth(token))
    assert reopen.status_code == 409
    async with live.runtime.db.session() as session:
        actions = (await session.scalars(select(AuditEvent.action))).all()
    assert actions.count("conversation.update") == 2


async def test_contacts_create_search_update_and_reject_bad_phones(live):
    _, token = await create_user(live, email="admin@example.com")
    created = await live.client.post(
        "/api/v1/contacts",
        json={
            "name": "Ana Lima",
            "phone": "+55 21 99876-5432",
            "email": "ana@example.com",
            "attributes": {"plan": "gold"},
        },
        headers=auth(token),
    )
    assert created.status_code == 201
    contact = created.json()
    assert contact["phone_e164"] == "+5521998765432"
    duplicate = await live.client.post(
        "/api/v1/contacts", json={"phone": "5521998765432"}, headers=auth(token)
    )
    assert duplicate.status_code == 409
    bad = await live.client.post("/api/v1/contacts", json={"phone": "12"}, headers=auth(token))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_phone"
    found = await live.client.get("/api/v1/contacts", params={"q": "98765"}, headers=auth(token))
    assert [c["id"] for c in found.json()["items"]] == [contact["id"]]
    patched = await live.client.patch(
        f"/api/v1/contacts/{contact['id']}",
        json={"attributes": {"monthly_spend": 1200}},
        headers=auth(token),
    )
    assert patched.json()["attributes"] == {"plan": "gold", "monthly_spend": 1200}


async def test_inbound_media_is_downloaded_and_served_only_through_the_api(live):
    await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID,
        "5511955554444",
        "Bia",
        {"type": "image", "data": PNG, "mime_type": "image/png", "caption": "comprovante"},
    )
    await settle(live)

    async def stored() -> Message | None:
        async with live.runtime.db.session() as session:
            message = await session.scalar(select(Message).where(Message.type == "image"))
            return message if message and message.media_status == "stored" else None

    message = await eventually(stored)
    assert message.text == "comprovante"
    response = await live.client.get(f"/api/v1/messages/{message.id}/media", headers=auth(token))
    assert response.status_code == 200
    assert response.content == PNG and response.headers["content-type"] == "image/png"
    assert (await live.client.get(f"/api/v1/messages/{message.id}/media")).status_code == 401


async def test_openapi_documents_the_api_with_examples(live):
    spec = (await live.client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "/api/v1/conversations/{conversation_id}/messages" in paths
    assert "/webhooks/whatsapp" not in paths
    schemas = spec["components"]["schemas"]
    assert schemas["MessageCreate"].get("examples")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
MESSAGE_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["text", "image", "template", "reaction", "location", "bogus"])
        | JSON,
        "text": st.text(max_size=5000) | JSON,
        "content": JSON,
        "reply_to_message_id": st.integers(min_value=-5, max_value=10**20) | JSON,
        "media_link": st.text(max_size=30) | st.just("https://example.com/a.png"),
    },
)


async def test_fuzzed_api_input_never_causes_a_500(live):
    inbox = await create_inbox(live)
    await seed_conversations(live, inbox, 1)
    _, token = await create_user(live, email="admin@example.com")
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()[
        "items"
    ][0]
    base = live.base_url

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        message=MESSAGE_BODIES,
        patch=st.dictionaries(
            st.sampled_from(["status", "assignee_id", "priority", "labels", "snoozed_until", "x"]),
            JSON,
            max_size=3,
        ),
        contact=st.dictionaries(
            st.sampled_from(["name", "phone", "email", "attributes"]), JSON, max_size=4
        ),
        query=st.text(max_size=30),
    )
    def check(message, patch, contact, query) -> None:
        with httpx.Client(base_url=base, headers=auth(token), timeout=10) as client:
            responses = [
                client.post(f"/api/v1/conversations/{conversation['id']}/messages", json=message),
                client.patch(f"/api/v1/conversations/{conversation['id']}", json=patch),
                client.post("/api/v1/contacts", json=contact),
                client.get("/api/v1/contacts", params={"q": query}),
                client.get("/api/v1/conversations", params={"cursor": query, "label": query}),
            ]
        for response in responses:
            assert response.status_code < 500, (response.request.url, response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"]

    await asyncio.to_thread(check)
