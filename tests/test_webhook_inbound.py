"""The Cloud API webhook, end to end over HTTP: signature, storage, processing, duplicates."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from tests.helpers import (
    APP_SECRET,
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
from wadesk.channels.whatsapp.signature import sign
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Message
from wadesk.inboxes.models import Inbox
from wadesk.ingest.models import WebhookDelivery
from wadesk.realtime.bus import bus


async def count(live, model, *where) -> int:
    async with live.runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_verification_echoes_challenge_only_for_the_right_token(live):
    inbox = await create_inbox(live)
    url = inbox["webhook_url"]
    ok = await live.client.get(
        url,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me-please",
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    shared = await live.client.get(
        "/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me-please",
            "hub.challenge": "42",
        },
    )
    assert shared.text == "42"
    bad = await live.client.get(
        url, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert bad.status_code == 403
    missing = await live.client.get(url)
    assert missing.status_code == 403


async def test_unsigned_or_badly_signed_posts_are_refused_and_not_stored(live):
    inbox = await create_inbox(live)
    body = json.dumps(envelope([text_message("5511987654321", "wamid.A1", "hi")])).encode()
    unsigned = await live.client.post(inbox["webhook_url"], content=body)
    wrong = await live.client.post(
        inbox["webhook_url"],
        content=body,
        headers={"X-Hub-Signature-256": sign(body, "other-secret")},
    )
    tampered = await live.client.post(
        inbox["webhook_url"],
        content=body.replace(b"hi", b"ho"),
        headers={"X-Hub-Signature-256": sign(body, APP_SECRET)},
    )
    assert [unsigned.status_code, wrong.status_code, tampered.status_code] == [401, 401, 401]
    assert unsigned.json()["error"]["code"] == "bad_signature"
    assert await count(live, WebhookDelivery) == 0


async def test_signed_body_that_is_not_json_gets_400(live):
    inbox = await create_inbox(live)
    response = await post_signed(live.client, inbox["webhook_url"], b"{not json")
    assert response.status_code == 400
    assert await count(live, WebhookDelivery) == 0


async def test_body_over_the_limit_gets_413(live):
    inbox = await create_inbox(live)
    big = b'{"x":"' + b"a" * (live.runtime.settings.max_webhook_body_bytes + 10) + b'"}'
    response = await post_signed(live.client, inbox["webhook_url"], big)
    assert response.status_code == 413
    assert await count(live, WebhookDelivery) == 0


async def test_text_message_creates_contact_conversation_and_message(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    with bus.subscribe() as events:
        response = await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope(
                [
                    text_message(
                        "5511987654321",
                        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                        "Olá, onde está meu pedido?",
                    )
                ],
                names={"5511987654321": "Maria Souza"},
            ),
        )
        assert response.status_code == 200 and response.json() == {"ok": True}
        # A plain, framed answer (no chunked encoding): Meta and load generators read it as is.
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers
        convs = await eventually(
            lambda: _json(live.client.get("/api/v1/conversations", headers=auth(token)))
        )
        seen = []
        while not events.empty():
            seen.append(events.get_nowait()[0])
    [conversation] = convs["items"]
    assert conversation["contact_name"] == "Maria Souza"
    assert conversation["status"] == "open"
    assert conversation["unread_count"] == 1
    assert conversation["last_message_preview"] == "Olá, onde está meu pedido?"
    assert conversation["window_closes_at"] is not None
    messages = (
        await live.client.get(
            f"/api/v1/conversations/{conversation['id']}/messages", headers=auth(token)
        )
    ).json()["items"]
    assert [(m["direction"], m["type"], m["text"], m["status"]) for m in messages] == [
        ("in", "text", "Olá, onde está meu pedido?", "received")
    ]
    assert {"contact.created", "conversation.created", "message.created"} <= set(seen)
    contact = (
        await live.client.get(f"/api/v1/contacts/{conversation['contact_id']}", headers=auth(token))
    ).json()
    assert contact["phone_e164"] == "+5511987654321"
    assert contact["identities"][0]["address"] == "5511987654321"


async def _json(awaitable):
    response = await awaitable
    data = response.json()
    return data if data.get("items") else None


async def test_every_entry_change_message_and_status_of_a_batch_is_processed(live):
    inbox = await create_inbox(live)
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    envelope(
                        [text_message("14155550001", f"wamid.b{i}", f"m{i}") for i in range(3)]
                    )["entry"][0]["changes"][0],
                    envelope([text_message("14155550002", "wamid.b3", "m3")])["entry"][0][
                        "changes"
                    ][0],
                ],
            },
            {
                "id": "2",
                "changes": envelope([text_message("14155550003", "wamid.b4", "m4")])["entry"][0][
                    "changes"
                ],
            },
        ],
    }
    response = await post_signed(live.client, inbox["webhook_url"], payload)
    assert response.status_code == 200
    await settle(live)
    assert await count(live, Message) == 5
    assert await count(live, Contact) == 3
    assert await count(live, Conversation) == 3


async def test_retries_and_concurrent_duplicates_store_one_message(live):
    inbox = await create_inbox(live)
    payload = envelope([text_message("14155550009", "wamid.DUP", "only once")])
    responses = await asyncio.gather(
        *(post_signed(live.client, inbox["webhook_url"], payload) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {200}
    await settle(live)
    await post_signed(live.client, "/webhooks/whatsapp", payload)  # the shared URL too
    await settle(live)
    assert await count(live, WebhookDelivery) == 9
    assert await count(live, Message) == 1
    assert await count(live, Conversation) == 1


async def test_unknown_type_is_kept_visible_and_replayable(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    odd = {
        "from": "14155550010",
        "id": "wamid.NEW",
        "timestamp": "1700000000",
        "type": "hologram",
        "hologram": {},
    }
    await post_signed(live.client, inbox["webhook_url"], envelope([odd]))
    await settle(live)
    listed = (await live.client.get("/api/v1/webhook-deliveries", headers=auth(token))).json()
    [delivery] = listed["items"]
    assert delivery["status"] == "unprocessable"
    assert "hologram" in delivery["error"]
    # The customer's message is not hidden from agents meanwhile.
    async with live.runtime.db.session() as session:
        message = await session.scalar(select(Message))
        assert message.type == "unsupported" and message.content["unknown_type"] == "hologram"
    replay = await live.client.post(
        "/api/v1/webhook-deliveries/replay", json={"ids": [delivery["id"]]}, headers=auth(token)
    )
    assert replay.json() == {"replayed": 1}
    await settle(live)
    assert await count(live, Message) == 1


async def test_delivery_for_an_unknown_number_is_unprocessable_but_acknowledged(live):
    inbox = await create_inbox(live)
    payload = envelope([text_message("14155550011", "wamid.X", "hi")], phone_number_id="999")
    response = await post_signed(live.client, inbox["webhook_url"], payload)
    assert response.status_code == 200
    await settle(live)
    async with live.runtime.db.session() as session:
        delivery = await session.scalar(select(WebhookDelivery))
        assert delivery.status == "unprocessable" and "no inbox" in delivery.error
    assert await count(live, Message) == 0


async def test_an_inbox_cannot_inject_events_for_another_inboxs_number(live):
    await create_inbox(live, phone_number_id="111", app_secret="secret-one")
    second = await create_inbox(live, phone_number_id="222", app_secret="secret-two")
    # Signed with inbox 2's secret but claiming to be for number 111.
    payload = envelope([text_message("14155550012", "wamid.EVIL", "hi")], phone_number_id="111")
    response = await post_signed(live.client, second["webhook_url"], payload, secret="secret-two")
    assert response.status_code == 200
    await settle(live)
    assert await count(live, Message) == 0


async def test_brazil_ninth_digit_and_saved_number_resolve_to_one_contact(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    created = await live.client.post(
        "/api/v1/contacts", json={"name": "João", "phone": "+55 11 98765-4321"}, headers=auth(token)
    )
    assert created.status_code == 201
    # An account from before the ninth digit writes with the old wa_id.
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("551187654321", "wamid.BR1", "oi")]),
    )
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("5511987654321", "wamid.BR2", "oi de novo")]),
    )
    await settle(live)
    assert await count(live, Contact) == 1
    assert await count(live, Message) == 2
    # Mexico's legacy 521 prefix too.
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("5215512345678", "wamid.MX1", "hola")]),
    )
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("525512345678", "wamid.MX2", "hola")]),
    )
    await settle(live)
    assert await count(live, Contact) == 2


async def test_a_delivery_stored_before_a_crash_is_processed_once_on_restart(live, settings):
    from wadesk.runtime import Runtime

    inbox = await create_inbox(live)
    crashed = Runtime(settings, run_workers=False)
    crashed.writer._on_stored = lambda: None  # the process "dies" before processing
    body = json.dumps(
        envelope([text_message("14155550013", "wamid.CRASH", "still here?")])
    ).encode()
    await crashed.writer.store(
        channel_type="whatsapp", inbox_id=inbox["id"], body=body, signature=sign(body, APP_SECRET)
    )
    await crashed.close()
    restarted = Runtime(settings, run_workers=False)
    try:
        await restarted.processor.process_available()
        again = await restarted.processor.process_available()
    finally:
        await restarted.close()
    assert again.deliveries == 0
    assert await count(live, Message, Message.external_id == "wamid.CRASH") == 1


async def test_a_round_claims_once_and_sweeps_parked_statuses_only_when_some_were_parked(
    live, settings
):
    """At a low rate every webhook wakes the processor: one claim per round (no second claim
    that finds nothing) and no parked-status sweep unless this process parked some lately."""
    from sqlalchemy import event

    from wadesk.runtime import Runtime

    inbox = await create_inbox(live)
    other = Runtime(settings, run_workers=False)  # another process, its loops not started
    other.writer._on_stored = lambda: None
    processor = other.processor
    processor._sweep_parked_until = 0.0  # past the sweeps that follow a start
    seen: list[str] = []
    event.listen(
        other.db.engine.sync_engine,
        "before_cursor_execute",
        lambda *args: seen.append(args[2]),
    )

    async def deliver(payload: dict) -> None:
        body = json.dumps(payload).encode()
        await other.writer.store(
            channel_type="whatsapp",
            inbox_id=inbox["id"],
            body=body,
            signature=sign(body, APP_SECRET),
        )

    def claims_and_sweeps() -> tuple[int, int]:
        claims = sum("FROM webhook_deliveries" in s for s in seen)
        sweeps = sum("FROM pending_statuses JOIN" in s for s in seen)
        seen.clear()
        return claims, sweeps

    try:
        for i in range(2):
            await deliver(envelope([text_message("14155550014", f"wamid.LOW{i}", "hi")]))
        seen.clear()
        assert await processor.run_once() == 0  # not a full batch: no round again at once
        assert claims_and_sweeps() == (1, 0)
        await deliver(envelope(statuses=[status("wamid.NOT_YET", "delivered", 1_700_000_020)]))
        seen.clear()
        await processor.run_once()
        assert claims_and_sweeps() == (1, 1)  # it parked one: it looks for its message
        assert processor._recheck_after == 1.0
        await processor.run_once()  # the recheck a second later, nothing new: swept again
        assert claims_and_sweeps() == (1, 1)
    finally:
        await other.close()
    assert await count(live, Message, Message.external_id.in_(["wamid.LOW0", "wamid.LOW1"])) == 2


def status(wamid: str, state: str, ts: int, **extra) -> dict:
    return {
        "id": wamid,
        "status": state,
        "timestamp": str(ts),
        "recipient_id": "14155550020",
        **extra,
    }


async def outbound_message(live, wamid: str | None) -> int:
    """An outbound message as the worker leaves it after a send (status 'sent')."""
    from wadesk.contacts.models import Contact
    from wadesk.db import utcnow

    async with live.runtime.db.session() as session:
        contact = Contact(name="C", phone_key="14155550020", attributes={})
        session.add(contact)
        await session.flush()
        inbox_id = await session.scalar(select(Inbox.id))
        conversation = Conversation(inbox_id=inbox_id, contact_id=contact.id, status="open")
        session.add(conversation)
        await session.flush()
        message = Message(
            inbox_id=inbox_id,
            conversation_id=conversation.id,
            direction="out",
            type="text",
            text="hi",
            content={},
            external_id=wamid,
            status="sent",
            sent_at=utcnow(),
            media_attempts=0,
        )
        session.add(message)
        await session.flush()
        return message.id


async def test_statuses_only_move_forward(live):
    inbox = await create_inbox(live)
    message_id = await outbound_message(live, "wamid.OUT1")
    for state, ts in (
        ("read", 1_700_000_030),
        ("delivered", 1_700_000_020),
        ("sent", 1_700_000_010),
    ):
        await post_signed(
            live.client, inbox["webhook_url"], envelope(statuses=[status("wamid.OUT1", state, ts)])
        )
    failed = status(
        "wamid.OUT1",
        "failed",
        1_700_000_040,
        errors=[{"code": 131026, "title": "Message undeliverable"}],
    )
    await post_signed(live.client, inbox["webhook_url"], envelope(statuses=[failed]))
    await settle(live)
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
    assert message.status == "read"
    assert message.delivered_at is not None and message.read_at.timestamp() == 1_700_000_030
    assert message.error_code is None


async def test_a_status_that_arrives_before_its_message_is_applied_later(live):
    from wadesk.conversations.inbound import apply_parked_statuses
    from wadesk.conversations.models import PendingStatus

    inbox = await create_inbox(live)
    early = [
        status("wamid.LATE", "delivered", 1_700_000_020),
        status("wamid.LATE", "delivered", 1_700_000_020),
    ]
    await post_signed(live.client, inbox["webhook_url"], envelope(statuses=early))
    await settle(live)
    assert await count(live, PendingStatus) == 1  # parked once, not lost, not doubled
    message_id = await outbound_message(live, "wamid.LATE")
    async with live.runtime.db.session() as session:
        await apply_parked_statuses(session)  # the background processor may have done it already
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
    assert message.status == "delivered"
    assert await count(live, PendingStatus) == 0


async def test_two_processes_racing_over_the_same_deliveries_store_each_message_once(
    live, settings, backend
):
    """Two runtimes (two engines, as two processes would have) process one backlog at once."""
    from wadesk.runtime import Runtime

    inbox = await create_inbox(live)
    writer_only = Runtime(settings, run_workers=False)
    writer_only.writer._on_stored = lambda: None
    bodies = []
    for i in range(300):
        # 100 customers, each message delivered three times (Meta retries), in mixed order.
        n = i % 100
        payload = envelope([text_message(f"1415666{n:04d}", f"wamid.race{n}", f"m{n}")])
        bodies.append(json.dumps(payload).encode())
    await asyncio.gather(
        *(
            writer_only.writer.store(
                channel_type="whatsapp", inbox_id=inbox["id"], body=b, signature=sign(b, APP_SECRET)
            )
            for b in bodies
        )
    )
    await writer_only.close()
    first, second = Runtime(settings, run_workers=False), Runtime(settings, run_workers=False)
    for runtime in (first, second):
        runtime.processor._batch_size = 25
    try:
        await asyncio.gather(
            first.processor.process_available(), second.processor.process_available()
        )
    finally:
        await first.close()
        await second.close()
    await settle(live)
    assert await count(live, Message) == 100
    assert await count(live, Contact) == 100
    assert await count(live, Conversation) == 100
    assert await count(live, WebhookDelivery, WebhookDelivery.status == "processed") == 300


async def test_many_batches_on_one_connection_keep_working(live, settings):
    """PostgreSQL switches a prepared statement to a generic plan at its 6th execution; an
    ON CONFLICT or partial-index predicate given as a bound parameter then stops matching."""
    from wadesk.runtime import Runtime

    inbox = await create_inbox(live)
    runtime = Runtime(settings, run_workers=False)
    runtime.processor._batch_size = 3
    try:
        for round_ in range(8):
            for i in range(3):
                n = round_ * 3 + i
                body = json.dumps(
                    envelope([text_message(f"1415777{n:04d}", f"wamid.gen{n}", "hi")])
                ).encode()
                await runtime.writer.store(
                    channel_type="whatsapp",
                    inbox_id=inbox["id"],
                    body=body,
                    signature=sign(body, APP_SECRET),
                )
            await runtime.processor.process_available()
    finally:
        await runtime.close()
    await settle(live)
    assert await count(live, Conversation) == 24
    assert await count(live, WebhookDelivery, WebhookDelivery.status == "processed") == 24


async def test_statuses_of_one_message_in_two_concurrent_batches_still_only_move_forward(
    live, backend
):
    """Two processes' batches carry statuses of the same message (read in one, delivered in
    the other): the second waits for the first's commit and then sees its status, instead of
    writing its own over it (found by the test above, flaky once deliveries got stored faster)."""
    from datetime import UTC, datetime

    from wadesk.channels.base import StatusUpdate
    from wadesk.conversations.inbound import apply_statuses

    if backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time")
    inbox = await create_inbox(live)
    message_id = await outbound_message(live, "wamid.RACE1")

    def status(state: str, ts: int) -> StatusUpdate:
        return StatusUpdate(PHONE_NUMBER_ID, "wamid.RACE1", state, datetime.fromtimestamp(ts, UTC))

    async def apply_in_own_transaction(state: str, ts: int) -> None:
        async with live.runtime.db.session() as session:
            await apply_statuses(session, inbox["id"], [status(state, ts)])

    async with live.runtime.db.session() as first:
        await apply_statuses(first, inbox["id"], [status("read", 1_700_000_030)])
        second = asyncio.create_task(apply_in_own_transaction("delivered", 1_700_000_020))
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the message row
    await second
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
    assert message.status == "read"
    assert message.read_at.timestamp() == 1_700_000_030
