"""Outbound attachments: upload (limits), send by upload_id, the worker uploads to the Graph
API (the simulator) and sends with the media id; the thread shows the file."""

from __future__ import annotations

import base64

from sqlalchemy import select

from tests.conversations_api.util import audit, world
from tests.helpers import PHONE_NUMBER_ID, auth, eventually
from wadesk.conversations.models import Message

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def test_an_uploaded_image_is_sent_with_its_whatsapp_media_id(live):
    w = await world(live, customers=1)
    [cid] = w["conversations"]
    _, agent = w["agent"]
    _, sup = w["sup"]
    uploaded = await live.client.post(
        "/api/v1/uploads",
        files={"file": ("receipt.png", PNG, "image/png")},
        headers=auth(agent),
    )
    assert uploaded.status_code == 201, uploaded.text
    upload = uploaded.json()
    assert upload["kind"] == "image" and upload["size"] == len(PNG)
    assert upload["filename"] == "receipt.png"
    assert len(await audit(live, "upload.create")) == 1
    # someone else cannot send my upload
    stolen = await live.client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"type": "image", "upload_id": upload["id"]},
        headers=auth(sup),
    )
    assert stolen.status_code == 422 and stolen.json()["error"]["code"] == "upload_unknown"
    wrong = await live.client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"type": "video", "upload_id": upload["id"]},
        headers=auth(agent),
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "upload_kind_mismatch"
    sent = await live.client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"type": "image", "upload_id": upload["id"], "text": "Your receipt"},
        headers=auth(agent),
    )
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["media_mime"] == "image/png" and message["media_status"] == "stored"

    async def is_sent():
        async with live.runtime.db.session() as session:
            stored = await session.get(Message, message["id"])
            return stored if stored.status in ("sent", "delivered", "read") else None

    stored = await eventually(is_sent, timeout=30)
    assert stored.media_id
    [out] = live.simulator.outbound(PHONE_NUMBER_ID)
    assert out["body"]["image"] == {"id": stored.media_id, "caption": "Your receipt"}
    assert live.simulator.media.get(stored.media_id).data == PNG
    # the thread shows it through the access-checked media route
    media = await live.client.get(f"/api/v1/messages/{message['id']}/media", headers=auth(agent))
    assert media.status_code == 200 and media.content == PNG
    assert media.headers["content-type"] == "image/png"
    _, outsider = w["outsider"]
    hidden = await live.client.get(
        f"/api/v1/messages/{message['id']}/media", headers=auth(outsider)
    )
    assert hidden.status_code == 404
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(Message.media_key).where(Message.id == message["id"]))


async def test_uploads_outside_whatsapps_limits_are_refused_clearly(live):
    w = await world(live, customers=1)
    _, agent = w["agent"]
    _, outsider = w["outsider"]
    cases = [
        (("a.gif", b"GIF89a", "image/gif"), {}, 415, "unsupported_media_type"),
        (("a.png", b"x" * (5 * 1024 * 1024 + 1), "image/png"), {}, 413, "file_too_large"),
        (("a.webp", b"x" * (500 * 1024 + 1), "image/webp"), {}, 413, "file_too_large"),
        (("a.png", PNG, "image/png"), {"type": "video"}, 415, "unsupported_media_type"),
        (("a.png", PNG, "image/png"), {"type": "banana"}, 422, "invalid_kind"),
        (("a.png", b"", "image/png"), {}, 422, "empty_file"),
    ]
    for file, data, status, code in cases:
        response = await live.client.post(
            "/api/v1/uploads", files={"file": file}, data=data, headers=auth(agent)
        )
        assert response.status_code == status, (file[0], response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], error
    big = await live.client.post(
        "/api/v1/uploads",
        files={"file": ("a.png", b"x" * (5 * 1024 * 1024 + 1), "image/png")},
        headers=auth(agent),
    )
    assert "5.0 MB" in big.json()["error"]["message"]
    no_file = await live.client.post("/api/v1/uploads", data={"x": "1"}, headers=auth(agent))
    assert no_file.status_code in (415, 422)
    not_multipart = await live.client.post("/api/v1/uploads", json={}, headers=auth(agent))
    assert not_multipart.status_code == 415
    nobody = await live.client.post(
        "/api/v1/uploads", files={"file": ("a.png", PNG, "image/png")}, headers=auth(outsider)
    )
    assert nobody.status_code == 403
    document = await live.client.post(
        "/api/v1/uploads",
        files={"file": ("../../etc/Invoice 7.pdf", b"%PDF-1.4 test", "application/pdf")},
        headers=auth(agent),
    )
    assert document.status_code == 201 and document.json()["filename"] == "Invoice 7.pdf"
