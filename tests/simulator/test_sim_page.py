"""The customer's phone page and its JSON API, mounted under /simulator."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Harness, wait_until

CUSTOMER = "5511987654321"


async def test_page_is_csp_friendly_and_uses_relative_urls(harness: Harness) -> None:
    response = await harness.client.get(f"{harness.base}/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="static/' in tag for tag in scripts)
    bodies = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.DOTALL)
    assert bodies and all(not body.strip() for body in bodies)  # no inline script
    assert re.search(r"\son[a-z]+\s*=", html) is None  # no inline event handlers
    assert re.search(r"""(?:src|href)="/""", html) is None  # nothing absolute
    for asset in ("static/phone.js", "static/phone.css"):
        served = await harness.client.get(f"{harness.base}/{asset}")
        assert served.status_code == 200
    script = (await harness.client.get(f"{harness.base}/static/phone.js")).text
    assert "innerHTML" not in script and "eval(" not in script


async def test_mount_without_trailing_slash_redirects(harness: Harness) -> None:
    response = await harness.client.get(harness.base, follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url).endswith("/simulator/")


async def api(harness: Harness, method: str, path: str, **kwargs: Any) -> Any:
    response = await harness.client.request(method, f"{harness.base}/api/{path}", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def test_chat_round_trip_through_the_page_api(harness: Harness) -> None:
    harness.sim.auto_read_seconds = None
    pnid = harness.number.phone_number_id
    [number] = await api(harness, "GET", "numbers")
    assert number["phone_number_id"] == pnid

    created = await api(
        harness, "POST", "customers", json={"wa_id": "+55 11 98765-4321", "name": "Ana"}
    )
    assert created == {"wa_id": CUSTOMER, "name": "Ana"}
    sent = await api(
        harness,
        "POST",
        "send",
        json={
            "phone_number_id": pnid,
            "wa_id": CUSTOMER,
            "message": {"type": "text", "text": "<b>hi</b>"},
        },
    )
    await wait_until(lambda: bool(harness.receiver.messages()))
    assert harness.receiver.messages()[0]["id"] == sent["id"]
    assert harness.receiver.messages()[0]["text"] == {"body": "<b>hi</b>"}

    reply = await harness.send(
        {
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "interactive",
            "context": {"message_id": sent["id"]},
            "interactive": {
                "type": "button",
                "body": {"text": "Pick one"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]},
            },
        }
    )
    wamid = reply.json()["messages"][0]["id"]
    await wait_until(lambda: harness.sim.messages[wamid].status == "delivered")

    customers = await api(harness, "GET", "customers", params={"phone_number_id": pnid})
    assert customers[0]["wa_id"] == CUSTOMER and customers[0]["unread"] == 1
    view = await api(
        harness, "GET", "conversation", params={"phone_number_id": pnid, "wa_id": CUSTOMER}
    )
    mine, theirs = view["messages"]
    assert mine["sender"] == "customer" and mine["text"] == "<b>hi</b>"
    assert theirs["text"] == "Pick one"
    assert theirs["reply_to"] == {"id": sent["id"], "text": "<b>hi</b>"}
    [button] = theirs["buttons"]

    assert (
        await api(harness, "POST", "read", json={"phone_number_id": pnid, "wa_id": CUSTOMER})
    ) == {"read": 1}
    await wait_until(lambda: harness.receiver.status_names(wamid)[-1:] == ["read"])

    await api(
        harness,
        "POST",
        "send",
        json={"phone_number_id": pnid, "wa_id": CUSTOMER, "message": button["reply"]},
    )
    await api(
        harness,
        "POST",
        "send",
        json={
            "phone_number_id": pnid,
            "wa_id": CUSTOMER,
            "message": {"type": "reaction", "message_id": wamid, "emoji": "❤️"},
        },
    )
    await wait_until(lambda: len(harness.receiver.messages()) == 3)
    tapped = harness.receiver.messages()[1]
    assert tapped["interactive"]["button_reply"] == {"id": "yes", "title": "Yes"}
    assert tapped["context"]["id"] == wamid
    view = await api(
        harness, "GET", "conversation", params={"phone_number_id": pnid, "wa_id": CUSTOMER}
    )
    assert view["messages"][1]["reactions"] == {"customer": "❤️"}
    assert len(view["messages"]) == 3  # the reaction is shown on its message, not as a bubble


async def test_template_is_rendered_with_quick_replies(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    await harness.send(
        {
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
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
                    },
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": "1",
                        "parameters": [{"type": "payload", "payload": "STOP"}],
                    },
                ],
            },
        }
    )
    view = await api(
        harness, "GET", "conversation", params={"phone_number_id": pnid, "wa_id": CUSTOMER}
    )
    [message] = view["messages"]
    assert message["text"] == "Hi Ana, our winter sale starts today: 30% off everything!"
    assert [b["reply"]["payload"] for b in message["buttons"]] == ["Tell me more", "STOP"]


async def test_customer_attaches_a_file(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    harness.sim.add_customer(CUSTOMER, "Ana")
    response = await harness.client.post(
        f"{harness.base}/api/send-file",
        data={"phone_number_id": pnid, "wa_id": CUSTOMER, "caption": "my invoice"},
        files={"file": ("invoice.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert response.status_code == 200, response.text
    await wait_until(lambda: bool(harness.receiver.messages()))
    document = harness.receiver.messages()[0]["document"]
    assert document["filename"] == "invoice.pdf" and document["caption"] == "my invoice"
    view = await api(
        harness, "GET", "conversation", params={"phone_number_id": pnid, "wa_id": CUSTOMER}
    )
    media = view["messages"][0]["media"]
    served = await harness.client.get(f"{harness.base}/{media['url']}")
    assert served.content == b"%PDF-1.4"
    assert served.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in served.headers["content-security-policy"]

    unsupported = await harness.client.post(
        f"{harness.base}/api/send-file",
        data={"phone_number_id": pnid, "wa_id": CUSTOMER},
        files={"file": ("x.svg", b"<svg/>", "image/svg+xml")},
    )
    assert unsupported.status_code == 400


async def test_page_api_rejects_bad_input(harness: Harness) -> None:
    pnid = harness.number.phone_number_id
    bad = [
        ("customers", {"wa_id": "12", "name": "x"}, 400),
        ("send", {"phone_number_id": "nope", "wa_id": CUSTOMER, "message": {}}, 404),
        ("send", {"phone_number_id": pnid, "wa_id": "5599", "message": {}}, 404),
    ]
    for path, body, status in bad:
        response = await harness.client.post(f"{harness.base}/api/{path}", json=body)
        assert response.status_code == status, (path, response.text)
    harness.sim.add_customer(CUSTOMER, "Ana")
    response = await harness.client.post(
        f"{harness.base}/api/send",
        json={"phone_number_id": pnid, "wa_id": CUSTOMER, "message": {"type": "system"}},
    )
    assert response.status_code == 400
