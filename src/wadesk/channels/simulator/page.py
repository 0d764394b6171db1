"""The customer's phone: one HTML page (static JS and CSS, no inline script) and its JSON API.

Every URL the page uses is relative, so the app works mounted under any prefix. The API turns
both directions of a conversation into simple views the script renders with ``textContent``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.datastructures import UploadFile

from wadesk.channels.simulator.media import MediaItem, max_bytes, media_kind
from wadesk.channels.simulator.state import ChatMessage, CustomerMessage, digits

if TYPE_CHECKING:
    from wadesk.channels.simulator.app import Simulator

STATIC_DIR = Path(__file__).parent / "static"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
# Customers can send only what a person types or taps; files go through send-file.
PAGE_MESSAGE_TYPES = ("text", "reaction", "button", "interactive", "location")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_web_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _media_view(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    view: dict[str, Any] = {"kind": kind, "mime_type": obj.get("mime_type")}
    if obj.get("id"):
        view["url"] = f"api/media/{obj['id']}"
    elif _is_web_link(obj.get("link")):
        view["url"] = obj["link"]
    if obj.get("filename"):
        view["filename"] = str(obj["filename"])
    return view


def _contacts_text(contacts: Any) -> str:
    names = [
        str(c.get("name", {}).get("formatted_name", "contact"))
        for c in contacts or []
        if isinstance(c, dict) and isinstance(c.get("name"), dict)
    ]
    return "Contact: " + ", ".join(names) if names else "Contact"


def _location_text(obj: dict[str, Any]) -> str:
    parts = [str(obj[key]) for key in ("name", "address") if obj.get(key)]
    return " · ".join(parts) or f"Location {obj.get('latitude')}, {obj.get('longitude')}"


def _customer_view(message: ChatMessage) -> dict[str, Any]:
    meta, kind = message.payload, message.type
    obj = _obj(meta.get(kind))
    view: dict[str, Any] = {"text": None}
    if kind == "text":
        view["text"] = obj.get("body")
    elif kind in ("image", "audio", "video", "document", "sticker"):
        view["text"] = obj.get("caption")
        view["media"] = _media_view(obj, kind)
    elif kind == "location":
        view["text"] = _location_text(obj)
    elif kind == "button":
        view["text"] = obj.get("text")
    elif kind == "interactive":
        reply = obj.get(str(obj.get("type")), {})
        view["text"] = reply.get("title") if isinstance(reply, dict) else None
    elif kind == "contacts":
        view["text"] = _contacts_text(meta.get("contacts"))
    else:
        view["text"] = f"[{kind}]"
    context = meta.get("context")
    if isinstance(context, dict) and context.get("id"):
        view["reply_to"] = str(context["id"])
    return view


def _interactive_view(message: ChatMessage, obj: dict[str, Any]) -> dict[str, Any]:
    def text_of(key: str) -> str | None:
        part = obj.get(key)
        return str(part.get("text")) if isinstance(part, dict) and part.get("text") else None

    action = _obj(obj.get("action"))
    view: dict[str, Any] = {
        "header": text_of("header"),
        "text": text_of("body"),
        "footer": text_of("footer"),
        "buttons": [],
    }
    kind = obj.get("type")
    if kind == "button":
        for button in action.get("buttons", []):
            reply = button.get("reply", {})
            view["buttons"].append(
                {
                    "title": reply.get("title"),
                    "reply": {
                        "type": "interactive",
                        "button_reply": {"id": reply.get("id"), "title": reply.get("title")},
                        "reply_to": message.id,
                    },
                }
            )
    elif kind == "list":
        for section in action.get("sections", []):
            for row in section.get("rows", []):
                chosen = {k: row[k] for k in ("id", "title", "description") if k in row}
                view["buttons"].append(
                    {
                        "title": row.get("title"),
                        "reply": {
                            "type": "interactive",
                            "list_reply": chosen,
                            "reply_to": message.id,
                        },
                    }
                )
    elif kind == "cta_url":
        parameters = action.get("parameters", {})
        if _is_web_link(parameters.get("url")):
            view["link"] = {"title": parameters.get("display_text"), "url": parameters["url"]}
    return view


def _business_view(sim: Simulator, message: ChatMessage) -> dict[str, Any]:
    body, kind = message.payload, message.type
    obj = _obj(body.get(kind))
    view: dict[str, Any] = {"text": None}
    if kind == "text":
        view["text"] = obj.get("body")
    elif kind in ("image", "audio", "video", "document", "sticker"):
        view["text"] = obj.get("caption")
        view["media"] = _media_view(obj, kind)
        item = sim.media.get(str(obj.get("id", "")))
        if item is not None:
            view["media"]["mime_type"] = item.mime_type
            view["media"].setdefault("filename", item.filename)
    elif kind == "location":
        view["text"] = _location_text(obj)
    elif kind == "contacts":
        view["text"] = _contacts_text(body.get("contacts"))
    elif kind == "interactive":
        view.update(_interactive_view(message, obj))
    elif kind == "template":
        number = sim.numbers.get(message.phone_number_id)
        language = obj.get("language", {})
        template = sim.templates.find(
            number.waba_id if number else "", str(obj.get("name")), str(language.get("code"))
        )
        components = obj.get("components", [])
        if template is not None:
            rendered = template.render(components)
            view.update(
                header=rendered["header"],
                text=rendered["body"],
                footer=rendered["footer"],
                buttons=[
                    {
                        "title": b["title"],
                        "reply": {
                            "type": "button",
                            "text": b["title"],
                            "payload": b["payload"],
                            "reply_to": message.id,
                        },
                    }
                    for b in rendered["buttons"]
                ],
            )
    context = body.get("context")
    if isinstance(context, dict) and context.get("message_id"):
        view["reply_to"] = str(context["message_id"])
    return view


def conversation_view(sim: Simulator, phone_number_id: str, wa_id: str) -> dict[str, Any]:
    conversation = sim.conversation(phone_number_id, wa_id)
    reactions: dict[str, dict[str, str]] = {}
    views: list[dict[str, Any]] = []
    snippets: dict[str, str] = {}
    for message in conversation.messages:
        if message.type == "reaction":
            # Both a customer's Meta object and the business's request hold {"reaction": ...}.
            obj = message.payload.get("reaction", {})
            emoji = str(obj.get("emoji", ""))
            per_target = reactions.setdefault(str(obj.get("message_id", "")), {})
            if emoji:
                per_target[message.sender] = emoji
            else:
                per_target.pop(message.sender, None)
            continue
        view = (
            _customer_view(message)
            if message.sender == "customer"
            else _business_view(sim, message)
        )
        view.update(
            id=message.id,
            sender=message.sender,
            type=message.type,
            timestamp=int(message.timestamp),
            status=message.status,
            error=message.error,
        )
        snippets[message.id] = str(view.get("text") or f"[{message.type}]")[:80]
        views.append(view)
    for view in views:
        view["reactions"] = reactions.get(view["id"], {})
        if view.get("reply_to"):
            view["reply_to"] = {
                "id": view["reply_to"],
                "text": snippets.get(view["reply_to"], "(earlier message)"),
            }
    return {
        "version": conversation.version,
        "typing": conversation.typing_until > time.time(),
        "messages": views,
    }


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def page_router(sim: Simulator) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def number_id(value: Any) -> str:
        if not isinstance(value, str) or value not in sim.numbers:
            raise HTTPException(404, "no such business number")
        return value

    def customer_id(value: Any) -> str:
        wa_id = digits(str(value or ""))
        if wa_id not in sim.customers:
            raise HTTPException(404, "no such customer")
        return wa_id

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
        )

    @router.get("/api/numbers")
    async def numbers() -> list[dict[str, str]]:
        return [
            {
                "phone_number_id": n.phone_number_id,
                "display_phone_number": n.display_phone_number,
                "waba_id": n.waba_id,
                "verified_name": n.verified_name,
            }
            for n in sim.numbers.values()
        ]

    @router.get("/api/customers")
    async def customers(phone_number_id: str | None = None) -> list[dict[str, Any]]:
        listed = []
        for wa_id, name in sim.customers.items():
            conversation = (
                sim.conversations.get((phone_number_id, wa_id)) if phone_number_id else None
            )
            messages = conversation.messages if conversation else []
            listed.append(
                {
                    "wa_id": wa_id,
                    "name": name,
                    "unread": sum(
                        1
                        for m in messages
                        if m.sender == "business"
                        and m.type != "reaction"
                        and m.status in ("sent", "delivered")
                    ),
                    "last_at": max((m.timestamp for m in messages), default=0),
                }
            )
        return sorted(listed, key=lambda c: (-c["last_at"], c["name"]))

    @router.post("/api/customers")
    async def add_customer(request: Request) -> dict[str, str]:
        body = await _json(request)
        name = str(body.get("name") or "").strip()[:80]
        try:
            wa_id = sim.add_customer(str(body.get("wa_id") or ""), name or None)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"wa_id": wa_id, "name": sim.customers[wa_id]}

    @router.get("/api/conversation")
    async def conversation(phone_number_id: str, wa_id: str) -> dict[str, Any]:
        return conversation_view(sim, number_id(phone_number_id), customer_id(wa_id))

    @router.post("/api/send")
    async def send(request: Request) -> dict[str, str]:
        body = await _json(request)
        pnid, wa_id = number_id(body.get("phone_number_id")), customer_id(body.get("wa_id"))
        message = body.get("message")
        if not isinstance(message, dict) or message.get("type") not in PAGE_MESSAGE_TYPES:
            raise HTTPException(400, f"message.type must be one of {', '.join(PAGE_MESSAGE_TYPES)}")
        return await _send(pnid, wa_id, message)

    @router.post("/api/send-file")
    async def send_file(request: Request) -> dict[str, str]:
        form = await request.form()
        pnid = number_id(form.get("phone_number_id"))
        wa_id = customer_id(form.get("wa_id"))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "file is required")
        mime_type = upload.content_type or "application/octet-stream"
        kind = media_kind(mime_type)
        if kind is None:
            raise HTTPException(400, f"WhatsApp does not carry {mime_type} files")
        data = await upload.read()
        if not data or len(data) > max_bytes(kind):
            raise HTTPException(400, f"a {kind} must be 1 to {max_bytes(kind)} bytes")
        message: dict[str, Any] = {
            "type": kind,
            "data": data,
            "mime_type": mime_type,
            "filename": upload.filename,
        }
        for key in ("caption", "reply_to"):
            value = form.get(key)
            if isinstance(value, str) and value:
                message[key] = value
        return await _send(pnid, wa_id, message)

    async def _send(pnid: str, wa_id: str, message: dict[str, Any]) -> dict[str, str]:
        item = CustomerMessage(pnid, wa_id, sim.customers[wa_id], message)
        try:
            (wamid,) = await sim.customer_sends_batch([item], wait=False)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"id": wamid}

    @router.post("/api/read")
    async def read(request: Request) -> dict[str, int]:
        body = await _json(request)
        pnid, wa_id = number_id(body.get("phone_number_id")), customer_id(body.get("wa_id"))
        return {"read": sim.customer_reads(pnid, wa_id)}

    @router.get("/api/media/{media_id}")
    async def media(media_id: str) -> Response:
        item: MediaItem | None = sim.media.get(media_id)
        if item is None:
            raise HTTPException(404, "no such media")
        inline = item.mime_type in ("image/jpeg", "image/png", "image/webp")
        disposition = "inline" if inline else "attachment"
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", item.filename or f"media-{item.id}")
        return Response(
            item.data,
            media_type=item.mime_type,
            headers={
                "Content-Disposition": f'{disposition}; filename="{filename}"',
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
