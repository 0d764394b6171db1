"""Media upload and two-step download; message templates: list, page, create, review."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from .conftest import Harness, wait_until


async def upload(harness: Harness, data: bytes, mime_type: str, **kwargs: Any) -> Any:
    form = {"messaging_product": "whatsapp", "type": mime_type, **kwargs}
    return await harness.client.post(
        f"{harness.graph}/{harness.number.phone_number_id}/media",
        headers=harness.auth,
        data=form,
        files={"file": ("file.bin", data, mime_type)},
    )


@pytest.fixture
def sim_options() -> dict[str, Any]:
    return {"media_url_ttl_seconds": 0.3}


async def test_upload_then_two_step_download_then_expiry(harness: Harness) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    response = await upload(harness, data, "image/png")
    assert response.status_code == 200
    media_id = response.json()["id"]
    assert media_id.isdigit()

    info = (await harness.client.get(f"{harness.graph}/{media_id}", headers=harness.auth)).json()
    assert info == {
        "messaging_product": "whatsapp",
        "url": info["url"],
        "mime_type": "image/png",
        "sha256": hashlib.sha256(data).hexdigest(),
        "file_size": len(data),
        "id": media_id,
    }
    assert info["url"].startswith(f"{harness.base}/media-download/")
    assert (await harness.client.get(info["url"])).status_code == 401
    download = await harness.client.get(info["url"], headers=harness.auth)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "image/png"

    await asyncio.sleep(0.35)
    expired = await harness.client.get(info["url"], headers=harness.auth)
    assert expired.status_code == 404


async def test_media_checks(harness: Harness) -> None:
    unsupported = await upload(harness, b"GIF89a", "image/gif")
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["code"] == 131053
    wrong_product = await upload(harness, b"x", "image/png", messaging_product="sms")
    assert wrong_product.json()["error"]["code"] == 100
    too_big = await upload(harness, b"x" * (500 * 1024 + 1), "image/webp")
    assert too_big.json()["error"]["code"] == 131053
    missing = await harness.client.get(f"{harness.graph}/123", headers=harness.auth)
    assert missing.json()["error"]["error_subcode"] == 33


async def test_delete_media(harness: Harness) -> None:
    media_id = (await upload(harness, b"%PDF", "application/pdf")).json()["id"]
    url = f"{harness.graph}/{media_id}"
    assert (await harness.client.delete(url, headers=harness.auth)).json() == {"success": True}
    assert (await harness.client.get(url, headers=harness.auth)).status_code == 400


async def test_media_sent_by_a_customer_is_downloadable(harness: Harness) -> None:
    data = b"\xff\xd8\xff fake jpeg"
    await harness.sim.customer_sends(
        harness.number.phone_number_id,
        "5511987654321",
        "Ana",
        {"type": "image", "data": data, "mime_type": "image/jpeg", "caption": "receipt"},
    )
    [message] = harness.receiver.messages()
    assert message["type"] == "image"
    assert message["image"]["caption"] == "receipt"
    assert message["image"]["mime_type"] == "image/jpeg"
    info = await harness.client.get(
        f"{harness.graph}/{message['image']['id']}", headers=harness.auth
    )
    download = await harness.client.get(info.json()["url"], headers=harness.auth)
    assert download.content == data


async def test_phone_number_object(harness: Harness) -> None:
    url = f"{harness.graph}/{harness.number.phone_number_id}"
    info = (await harness.client.get(url, headers=harness.auth)).json()
    assert info["display_phone_number"] == "15550783881"
    assert info["id"] == harness.number.phone_number_id


# -- templates ----------------------------------------------------------------------------


def templates_url(harness: Harness) -> str:
    return f"{harness.graph}/{harness.number.waba_id}/message_templates"


async def test_templates_are_seeded_and_paged_like_graph(harness: Harness) -> None:
    first = (
        await harness.client.get(templates_url(harness), params={"limit": 2}, headers=harness.auth)
    ).json()
    assert [t["name"] for t in first["data"]] == ["hello_world", "order_update"]
    assert set(first["data"][0]) == {
        "name",
        "parameter_format",
        "components",
        "language",
        "status",
        "category",
        "id",
    }
    assert first["data"][1]["language"] == "pt_BR" and first["data"][1]["status"] == "APPROVED"
    cursors = first["paging"]["cursors"]
    assert cursors["before"] and cursors["after"]
    second = (await harness.client.get(first["paging"]["next"], headers=harness.auth)).json()
    assert [t["name"] for t in second["data"]] == ["seasonal_promotion"]
    assert "next" not in second["paging"]

    only = await harness.client.get(
        templates_url(harness), params={"fields": "name,status"}, headers=harness.auth
    )
    assert all(set(t) == {"name", "status", "id"} for t in only.json()["data"])


async def test_create_template_is_pending_then_approved(harness: Harness) -> None:
    body = {
        "name": "shipping_notice",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Your order {{1}} shipped."}],
    }
    response = await harness.client.post(templates_url(harness), json=body, headers=harness.auth)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["status"] == "PENDING" and created["category"] == "UTILITY"

    def review_webhook() -> list[dict[str, Any]]:
        return [
            change["value"]
            for delivery in harness.receiver.deliveries
            for entry in delivery["entry"]
            for change in entry["changes"]
            if change["field"] == "message_template_status_update"
        ]

    await wait_until(lambda: bool(review_webhook()))
    assert review_webhook()[0]["event"] == "APPROVED"
    assert review_webhook()[0]["message_template_name"] == "shipping_notice"
    send = await harness.send(
        {
            "messaging_product": "whatsapp",
            "to": "5511987654321",
            "type": "template",
            "template": {
                "name": "shipping_notice",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1"}]}],
            },
        }
    )
    assert send.status_code == 200

    duplicate = await harness.client.post(templates_url(harness), json=body, headers=harness.auth)
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["error_subcode"] == 2388024


async def test_pending_and_rejected_templates_cannot_be_sent(harness: Harness) -> None:
    harness.sim.template_review_seconds = 0.2
    body = {
        "name": "please_reject_me",
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Buy now"}],
    }
    await harness.client.post(templates_url(harness), json=body, headers=harness.auth)
    send_body = {
        "messaging_product": "whatsapp",
        "to": "5511987654321",
        "type": "template",
        "template": {"name": "please_reject_me", "language": {"code": "en_US"}},
    }
    assert (await harness.send(send_body)).json()["error"]["code"] == 132001  # pending
    template = harness.sim.templates.find(harness.number.waba_id, "please_reject_me", "en_US")
    assert template is not None
    await wait_until(lambda: template.status == "REJECTED")
    assert (await harness.send(send_body)).json()["error"]["code"] == 132001
    listed = await harness.client.get(templates_url(harness), headers=harness.auth)
    rejected = [t for t in listed.json()["data"] if t["name"] == "please_reject_me"]
    assert rejected[0]["status"] == "REJECTED"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name", "language": "en_US", "category": "UTILITY", "components": []},
        {"name": "ok", "language": "english", "category": "UTILITY", "components": []},
        {"name": "ok", "language": "en_US", "category": "SPAM", "components": []},
        {"name": "ok", "language": "en_US", "category": "UTILITY", "components": []},
    ],
)
async def test_invalid_templates(harness: Harness, body: dict[str, Any]) -> None:
    response = await harness.client.post(templates_url(harness), json=body, headers=harness.auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


async def test_templates_of_another_waba_are_not_visible(harness: Harness) -> None:
    response = await harness.client.get(
        f"{harness.graph}/999/message_templates", headers=harness.auth
    )
    assert response.json()["error"]["error_subcode"] == 33
