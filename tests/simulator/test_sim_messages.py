"""POST /{phone_number_id}/messages: answers, validation and the status webhooks that follow."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import TOKEN, Harness, wait_until

WAMID = re.compile(r"^wamid\.[A-Za-z0-9+/=]+$")


async def test_send_text_answers_like_meta_then_sends_signed_statuses(harness: Harness) -> None:
    response = await harness.send_text(to="+55 11 98765-4321")
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+55 11 98765-4321", "wa_id": "5511987654321"}]
    wamid = body["messages"][0]["id"]
    assert WAMID.match(wamid)

    receiver = harness.receiver
    await wait_until(lambda: receiver.status_names(wamid) == ["sent", "delivered", "read"])
    assert receiver.bad_signatures == 0
    delivery = receiver.deliveries[0]
    assert delivery["object"] == "whatsapp_business_account"
    entry = delivery["entry"][0]
    assert entry["id"] == harness.number.waba_id
    change = entry["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["metadata"] == {
        "display_phone_number": "15550783881",
        "phone_number_id": harness.number.phone_number_id,
    }
    sent, delivered, read = receiver.statuses(wamid)
    for status in (sent, delivered, read):
        assert status["recipient_id"] == "5511987654321"
        assert status["timestamp"].isdigit()
    assert sent["conversation"]["origin"] == {"type": "service"}
    assert sent["conversation"]["expiration_timestamp"].isdigit()
    assert delivered["conversation"]["id"] == sent["conversation"]["id"]
    assert sent["pricing"] == {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "service",
    }
    assert "conversation" not in read and "pricing" not in read

    [record] = harness.sim.outbound()
    assert record["wamid"] == wamid and record["body"]["text"] == {"body": "hello"}


async def test_invalid_token_is_401_code_190(harness: Harness) -> None:
    url = f"{harness.graph}/{harness.number.phone_number_id}/messages"
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        response = await harness.client.post(url, json={}, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == 190 and error["type"] == "OAuthException"
        assert error["fbtrace_id"]
    assert harness.sim.state()["sends"]["rejected_by_code"] == {"190": 2}


async def test_token_of_another_number_cannot_use_this_number(harness: Harness) -> None:
    response = await harness.client.post(
        f"{harness.graph}/999999/messages", json={}, headers=harness.auth
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 33)


async def test_unknown_version_and_path(harness: Harness) -> None:
    response = await harness.client.get(f"{harness.base}/graph/latest/x", headers=harness.auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == 2500
    response = await harness.client.get(f"{harness.graph}/a/b/c", headers=harness.auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == 2500


BASE = {"messaging_product": "whatsapp", "to": "5511987654321"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"to": "5511987654321", "type": "text", "text": {"body": "x"}}, 100),
        ({**BASE, "type": "text", "text": {"body": ""}}, 100),
        ({**BASE, "type": "text", "text": {"body": "x" * 4097}}, 100),
        ({**BASE, "type": "text"}, 100),
        ({**BASE, "type": "poll", "poll": {}}, 100),
        ({**BASE, "to": "12", "type": "text", "text": {"body": "x"}}, 100),
        ({**BASE, "type": "image", "image": {}}, 100),
        ({**BASE, "type": "image", "image": {"id": "404"}}, 100),
        ({**BASE, "type": "audio", "audio": {"link": "https://x.test/a.ogg", "caption": "c"}}, 100),
        ({**BASE, "type": "reaction", "reaction": {"emoji": "👍"}}, 100),
        ({**BASE, "type": "location", "location": {"latitude": 91, "longitude": 0}}, 131009),
        (
            {
                **BASE,
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "Pick"},
                    "action": {
                        "buttons": [{"type": "reply", "reply": {"id": "1", "title": "x" * 21}}]
                    },
                },
            },
            131009,
        ),
        (
            {
                **BASE,
                "type": "template",
                "template": {"name": "nope", "language": {"code": "en_US"}},
            },
            132001,
        ),
        (
            {
                **BASE,
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "pt_BR"}},
            },
            132001,
        ),
        (
            {
                **BASE,
                "type": "template",
                "template": {"name": "order_update", "language": {"code": "pt_BR"}},
            },
            132000,
        ),
    ],
)
async def test_invalid_bodies_are_400_with_meta_codes(
    harness: Harness, body: dict[str, Any], code: int
) -> None:
    response = await harness.send(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(f"(#{code})")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert harness.sim.outbound() == []


async def test_body_that_is_not_json(harness: Harness) -> None:
    response = await harness.client.post(
        f"{harness.graph}/{harness.number.phone_number_id}/messages",
        content=b"{nope",
        headers={**harness.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == 100


async def test_template_send_is_billable_in_its_category(harness: Harness) -> None:
    response = await harness.send(
        {
            **BASE,
            "type": "template",
            "template": {
                "name": "seasonal_promotion",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "winter"},
                            {"type": "text", "text": "30%"},
                        ],
                    }
                ],
            },
            "biz_opaque_callback_data": "campaign-7",
        }
    )
    assert response.status_code == 200, response.text
    wamid = response.json()["messages"][0]["id"]
    await wait_until(lambda: "sent" in harness.receiver.status_names(wamid))
    sent = harness.receiver.statuses(wamid)[0]
    assert sent["pricing"]["billable"] is True
    assert sent["pricing"]["category"] == "marketing"
    assert sent["conversation"]["origin"] == {"type": "marketing"}
    assert sent["biz_opaque_callback_data"] == "campaign-7"


async def test_type_defaults_to_text_and_every_other_type_is_accepted(harness: Harness) -> None:
    upload = await harness.client.post(
        f"{harness.graph}/{harness.number.phone_number_id}/media",
        headers=harness.auth,
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("a.png", b"\x89PNG fake", "image/png")},
    )
    media_id = upload.json()["id"]
    bodies: list[dict[str, Any]] = [
        {**BASE, "text": {"body": "no type given"}},
        {**BASE, "type": "image", "image": {"id": media_id, "caption": "look"}},
        {
            **BASE,
            "type": "document",
            "document": {"link": "https://x.test/a.pdf", "filename": "a.pdf"},
        },
        {**BASE, "type": "location", "location": {"latitude": -23.5, "longitude": -46.6}},
        {**BASE, "type": "contacts", "contacts": [{"name": {"formatted_name": "Ana"}}]},
        {
            **BASE,
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "Choose"},
                "action": {
                    "button": "Options",
                    "sections": [{"title": "S", "rows": [{"id": "r1", "title": "Row"}]}],
                },
            },
        },
        {**BASE, "type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}},
        {
            **BASE,
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "#9"}]}],
            },
        },
    ]
    for body in bodies:
        response = await harness.send(body)
        assert response.status_code == 200, (body, response.text)
    assert [r["body"].get("type", "text") for r in harness.sim.outbound()] == [
        "text",
        "image",
        "document",
        "location",
        "contacts",
        "interactive",
        "reaction",
        "template",
    ]


async def test_brazilian_number_without_ninth_digit_keeps_its_wa_id(harness: Harness) -> None:
    harness.sim.add_customer("551187654321", "Legacy account")
    response = await harness.send_text(to="5511987654321")
    assert response.json()["contacts"] == [{"input": "5511987654321", "wa_id": "551187654321"}]


async def test_business_marks_a_customer_message_read(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    first = await harness.sim.customer_sends(
        pnid, "5511987654321", "Ana", {"type": "text", "text": "1"}
    )
    second = await harness.sim.customer_sends(
        pnid, "5511987654321", "Ana", {"type": "text", "text": "2"}
    )
    response = await harness.send(
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": second,
            "typing_indicator": {"type": "text"},
        }
    )
    assert response.json() == {"success": True}
    assert harness.sim.messages[first].status == "read"
    assert harness.sim.messages[second].status == "read"
    unknown = await harness.send(
        {"messaging_product": "whatsapp", "status": "read", "message_id": "x"}
    )
    assert unknown.status_code == 400


async def test_no_read_status_without_the_customer_when_auto_read_is_off(harness: Harness) -> None:
    harness.sim.auto_read_seconds = None
    wamid = (await harness.send_text()).json()["messages"][0]["id"]
    await wait_until(lambda: harness.receiver.status_names(wamid) == ["sent", "delivered"])
    assert harness.sim.customer_reads(harness.number.phone_number_id, "5511987654321") == 1
    await wait_until(lambda: harness.receiver.status_names(wamid)[-1:] == ["read"])


async def test_production_client_runs_unchanged_against_the_simulator(harness: Harness) -> None:
    """wadesk's own WhatsApp client, with only the Graph base URL changed."""
    from wadesk.channels.base import OutboundMessage
    from wadesk.channels.whatsapp.client import WhatsAppClient
    from wadesk.httpclient import HttpClient

    http = HttpClient(timeout=10)
    try:
        client = WhatsAppClient(
            http=http,
            graph_url=f"{harness.base}/graph",
            api_version="v21.0",
            phone_number_id=harness.number.phone_number_id,
            access_token=TOKEN,
            business_account_id=harness.number.waba_id,
        )
        media_id = await client.upload_media(b"%PDF-1.4 test", "application/pdf", "invoice.pdf")
        data, mime_type = await client.fetch_media(media_id)
        assert (data, mime_type) == (b"%PDF-1.4 test", "application/pdf")
        result = await client.send(
            OutboundMessage(recipient="5511987654321", type="text", text="from wadesk")
        )
        assert harness.sim.outbound()[0]["wamid"] == result.external_id
        names = {t["name"] for t in await client.list_templates()}
        assert {"hello_world", "order_update", "seasonal_promotion"} <= names
    finally:
        await http.aclose()
