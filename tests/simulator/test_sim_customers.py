"""What simulated customers send: message shapes, retries, duplicates and batches."""

from __future__ import annotations

from typing import Any

import pytest

from wadesk.channels.simulator.app import CustomerMessage, WebhookDeliveryError

from .conftest import APP_SECRET, Harness, wait_until

CUSTOMER = "5511987654321"


async def test_text_message_webhook_is_meta_shaped(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    wamid = await harness.sim.customer_sends(
        pnid, CUSTOMER, "Ana Souza", {"type": "text", "text": "oi"}
    )
    [delivery] = harness.receiver.deliveries
    assert delivery == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": harness.number.waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": pnid,
                            },
                            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": CUSTOMER}],
                            "messages": [
                                {
                                    "type": "text",
                                    "text": {"body": "oi"},
                                    "from": CUSTOMER,
                                    "id": wamid,
                                    "timestamp": delivery["entry"][0]["changes"][0]["value"][
                                        "messages"
                                    ][0]["timestamp"],
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    assert harness.receiver.messages()[0]["timestamp"].isdigit()
    assert harness.sim.state()["inbound_messages"] == 1


async def test_short_forms_reply_and_reaction(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    send = harness.sim.customer_sends
    first = await send(pnid, CUSTOMER, "Ana", {"type": "text", "text": "order?"})
    await send(pnid, CUSTOMER, "Ana", {"type": "text", "text": "this one", "reply_to": first})
    await send(pnid, CUSTOMER, "Ana", {"type": "reaction", "message_id": first, "emoji": "👍"})
    await send(pnid, CUSTOMER, "Ana", {"type": "location", "latitude": 1.5, "longitude": 2.5})
    await send(pnid, CUSTOMER, "Ana", {"type": "button", "text": "Yes", "payload": "YES"})
    await send(
        pnid,
        CUSTOMER,
        "Ana",
        {"type": "interactive", "button_reply": {"id": "b1", "title": "Track"}},
    )
    await send(
        pnid,
        CUSTOMER,
        "Ana",
        {"type": "audio", "data": b"OggS", "mime_type": "audio/ogg; codecs=opus", "voice": True},
    )
    messages = harness.receiver.messages()
    assert messages[1]["context"] == {"from": "15550783881", "id": first}
    assert messages[2]["reaction"] == {"message_id": first, "emoji": "👍"}
    assert messages[3]["location"] == {"latitude": 1.5, "longitude": 2.5}
    assert messages[4]["button"] == {"payload": "YES", "text": "Yes"}
    assert messages[5]["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b1", "title": "Track"},
    }
    assert messages[6]["audio"]["voice"] is True
    assert messages[6]["audio"]["sha256"].endswith("=")


async def test_full_meta_objects_pass_through(harness: Harness) -> None:
    system = {
        "type": "system",
        "system": {
            "body": "Ana changed her number",
            "wa_id": "5511900001111",
            "type": "user_changed_number",
        },
    }
    unsupported = {
        "type": "unsupported",
        "errors": [{"code": 131051, "title": "Message type unknown"}],
    }
    for message in (system, unsupported):
        await harness.sim.customer_sends(harness.number.phone_number_id, CUSTOMER, "Ana", message)
    received = harness.receiver.messages()
    assert received[0]["system"] == system["system"]
    assert received[1]["errors"] == unsupported["errors"]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text", "text": ""},
        {"type": "image", "data": "not bytes", "mime_type": "image/png"},
        {"type": "image", "data": b"GIF", "mime_type": "image/gif"},
        {"type": "order"},
        {},
    ],
)
async def test_invalid_customer_messages(harness: Harness, message: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await harness.sim.customer_sends(harness.number.phone_number_id, CUSTOMER, "Ana", message)
    assert harness.receiver.deliveries == []


async def test_retries_until_200(harness: Harness) -> None:
    harness.receiver.answers = [500, 503, 429]
    await harness.sim.customer_sends(
        harness.number.phone_number_id, CUSTOMER, "Ana", {"type": "text", "text": "hi"}
    )
    assert harness.receiver.attempts == 4
    assert len(harness.receiver.deliveries) == 1
    assert harness.sim.state()["webhooks"] == {"delivered": 1, "failed_attempts": 3, "abandoned": 0}


async def test_gives_up_after_the_retry_budget(harness: Harness) -> None:
    harness.receiver.answers = [500] * 50
    with pytest.raises(WebhookDeliveryError) as caught:
        await harness.sim.customer_sends(
            harness.number.phone_number_id, CUSTOMER, "Ana", {"type": "text", "text": "hi"}
        )
    assert len(caught.value.wamids) == 1
    assert 2 <= harness.receiver.attempts < 50
    assert harness.sim.state()["webhooks"]["abandoned"] == 1


async def test_wrong_secret_is_retried_then_abandoned(harness: Harness) -> None:
    harness.number.app_secret = "not-" + APP_SECRET
    with pytest.raises(WebhookDeliveryError):
        await harness.sim.customer_sends(
            harness.number.phone_number_id, CUSTOMER, "Ana", {"type": "text", "text": "hi"}
        )
    assert harness.receiver.bad_signatures == harness.receiver.attempts > 1


async def test_duplicate_delivery(harness: Harness) -> None:
    wamid = await harness.sim.customer_sends(
        harness.number.phone_number_id,
        CUSTOMER,
        "Ana",
        {"type": "text", "text": "hi"},
        duplicate=True,
    )
    assert [m["id"] for m in harness.receiver.messages()] == [wamid, wamid]
    first, second = harness.receiver.deliveries
    assert first == second


async def test_batch_has_several_entries_changes_and_messages(harness: Harness) -> None:
    sim = harness.sim
    other = type(harness.number)(
        phone_number_id="200000000000001",
        display_phone_number="15550000002",
        waba_id="300000000000001",
        access_token="other-token",
        app_secret=APP_SECRET,
        webhook_url=harness.number.webhook_url,
    )
    sim.register_number(other)
    pnid = harness.number.phone_number_id
    items = [
        CustomerMessage(pnid, CUSTOMER, "Ana", {"type": "text", "text": "1"}),
        CustomerMessage(pnid, CUSTOMER, "Ana", {"type": "text", "text": "2"}),
        CustomerMessage(pnid, "5521988887777", "Bruno", {"type": "text", "text": "3"}),
        CustomerMessage(
            other.phone_number_id, "5531977776666", "Carla", {"type": "text", "text": "4"}
        ),
    ]
    wamids = await sim.customer_sends_batch(items)
    [delivery] = harness.receiver.deliveries
    assert [entry["id"] for entry in delivery["entry"]] == [harness.number.waba_id, other.waba_id]
    first_entry = delivery["entry"][0]["changes"]
    assert [len(c["value"]["messages"]) for c in first_entry] == [2, 1]
    assert first_entry[1]["value"]["contacts"] == [
        {"profile": {"name": "Bruno"}, "wa_id": "5521988887777"}
    ]
    assert [m["id"] for m in harness.receiver.messages()] == wamids
    assert len(set(wamids)) == 4


async def test_batch_must_share_one_webhook(harness: Harness) -> None:
    other = type(harness.number)(
        phone_number_id="200000000000009",
        display_phone_number="15550000009",
        waba_id="300000000000009",
        access_token="t",
        app_secret="another-secret",
        webhook_url="http://127.0.0.1:9/elsewhere",
    )
    harness.sim.register_number(other)
    items = [
        CustomerMessage(
            harness.number.phone_number_id, CUSTOMER, "Ana", {"type": "text", "text": "1"}
        ),
        CustomerMessage(other.phone_number_id, CUSTOMER, "Ana", {"type": "text", "text": "2"}),
    ]
    with pytest.raises(ValueError):
        await harness.sim.customer_sends_batch(items)
    with pytest.raises(ValueError):
        await harness.sim.customer_sends("unknown", CUSTOMER, "Ana", {"type": "text", "text": "x"})


async def test_aclose_cancels_pending_work(harness: Harness) -> None:
    harness.sim.auto_read_seconds = None  # the status timeline now waits for the customer
    wamid = (await harness.send_text(to=CUSTOMER)).json()["messages"][0]["id"]
    await wait_until(lambda: harness.receiver.status_names(wamid) == ["sent", "delivered"])
    assert harness.sim.state()["pending_tasks"] == 1
    await harness.sim.aclose()
    assert harness.sim.state()["pending_tasks"] == 0
