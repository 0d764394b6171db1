"""Meta message objects for what simulated customers send.

A caller may give a full Meta message object (its type's object present, e.g.
``{"type": "text", "text": {"body": "hi"}}``), or a short form:

- ``{"type": "text", "text": "hi"}``
- ``{"type": "image" | "audio" | "video" | "document" | "sticker", "data": b"...",
  "mime_type": "image/png", "caption"?, "filename"?, "voice"?: bool, "animated"?: bool}``
- ``{"type": "location", "latitude": ..., "longitude": ..., "name"?, "address"?}``
- ``{"type": "reaction", "message_id": wamid, "emoji": "👍"}`` (empty emoji removes it)
- ``{"type": "button", "text": ..., "payload": ...}`` (a template's quick reply)
- ``{"type": "interactive", "button_reply" | "list_reply": {"id": ..., "title": ...}}``

Either form takes ``reply_to`` (a wamid: the message is a reply), ``forwarded`` and
``referral`` (a Click-to-WhatsApp ad). Media webhooks carry the base64 SHA-256 of the file,
as Meta's do (``GET /{media_id}`` gives the hex digest).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from typing import Any

from wadesk.channels.simulator.media import MediaItem, media_kind
from wadesk.channels.simulator.state import BusinessNumber, unix_now

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Store bytes for the business number and return the media (id, mime type, sha256...).
MediaSaver = Callable[[bytes, str, str | None], MediaItem]


def build_customer_message(
    message: dict[str, Any],
    *,
    wa_id: str,
    wamid: str,
    number: BusinessNumber,
    save_media: MediaSaver,
) -> dict[str, Any]:
    kind = message.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError("a customer message needs a type")
    if isinstance(message.get(kind), dict | list) or kind in ("unsupported", "unknown"):
        built = copy.deepcopy(
            {k: v for k, v in message.items() if k not in ("reply_to", "forwarded")}
        )
    else:
        built = {"type": kind, **_short_form(kind, message, save_media)}
        if "referral" in message:
            built["referral"] = message["referral"]
    built["from"] = wa_id
    built.setdefault("id", wamid)
    built.setdefault("timestamp", unix_now())
    if message.get("reply_to"):
        built["context"] = {"from": number.display_phone_number, "id": str(message["reply_to"])}
    elif message.get("forwarded"):
        built["context"] = {"forwarded": True}
    return built


def _short_form(kind: str, message: dict[str, Any], save_media: MediaSaver) -> dict[str, Any]:
    if kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text:
            raise ValueError("a text message needs non-empty text")
        return {"text": {"body": text}}
    if kind in MEDIA_TYPES:
        return {kind: _media_object(kind, message, save_media)}
    if kind == "location":
        location = {
            key: message[key]
            for key in ("latitude", "longitude", "name", "address", "url")
            if key in message
        }
        if "latitude" not in location or "longitude" not in location:
            raise ValueError("a location needs latitude and longitude")
        return {"location": location}
    if kind == "reaction":
        if not message.get("message_id"):
            raise ValueError("a reaction needs the message_id it reacts to")
        return {
            "reaction": {"message_id": message["message_id"], "emoji": message.get("emoji", "")}
        }
    if kind == "button":
        text = str(message.get("text", ""))
        return {"button": {"payload": str(message.get("payload", text)), "text": text}}
    if kind == "interactive":
        for sub in ("button_reply", "list_reply", "nfm_reply"):
            if isinstance(message.get(sub), dict):
                return {"interactive": {"type": sub, sub: message[sub]}}
        raise ValueError("an interactive reply needs button_reply, list_reply or nfm_reply")
    raise ValueError(f"give a full Meta message object for type {kind!r}")


def _media_object(kind: str, message: dict[str, Any], save_media: MediaSaver) -> dict[str, Any]:
    data, mime_type = message.get("data"), message.get("mime_type")
    if not isinstance(data, bytes) or not isinstance(mime_type, str):
        raise ValueError(f"a {kind} needs data (bytes) and mime_type")
    if media_kind(mime_type) is None:
        raise ValueError(f"WhatsApp does not carry {mime_type}")
    filename = message.get("filename")
    item = save_media(data, mime_type, filename if isinstance(filename, str) else None)
    obj: dict[str, Any] = {
        "mime_type": mime_type,
        "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "id": item.id,
    }
    if kind == "document" and item.filename:
        obj["filename"] = item.filename
    if message.get("caption") and kind in ("image", "video", "document"):
        obj["caption"] = str(message["caption"])
    if kind == "audio":
        obj["voice"] = bool(message.get("voice", False))
    if kind == "sticker":
        obj["animated"] = bool(message.get("animated", False))
    return obj
