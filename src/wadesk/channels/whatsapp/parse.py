"""Turn a Cloud API webhook body into neutral messages and status updates.

Every entry, every change, every message and every status of a delivery is read (peers read
only the first). A problem in one item does not stop the others: it is reported in
``problems`` so the delivery can be kept as unprocessable and replayed after an upgrade.

Only a body that is not a WhatsApp webhook at all raises :class:`ParseError`. A message whose
own object cannot be read (an unknown type, or a known type in a shape we do not understand)
is kept as an ``unsupported`` placeholder, so the customer's message is never silently lost;
a replay after an upgrade turns the placeholder into the real message.

Every string that leaves this module is cleaned (no NUL, no lone surrogate) and every
structure is bounded in depth, so what we hand on can always be stored as text and JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wadesk.channels.base import InboundMessage, Media, ParsedDelivery, StatusUpdate

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
KNOWN_TYPES = (
    "text",
    *MEDIA_TYPES,
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "request_welcome",
    "unsupported",
    "unknown",
)
STATUS_VALUES = ("sent", "delivered", "read", "failed", "deleted")
# Statuses Meta documents that our neutral types fold into one we know: a voice message
# that was played was displayed in the chat first.
STATUS_ALIASES = {"played": "read"}
MAX_DEPTH = 24  # far deeper than any documented payload; deeper subtrees are cut
MAX_TIMESTAMP_DIGITS = 11  # Unix seconds until year 5138; milliseconds are refused


class ParseError(ValueError):
    """The delivery as a whole (or, inside this module, one item of it) cannot be read."""


@dataclass
class ParseResult:
    delivery: ParsedDelivery
    problems: list[str] = field(default_factory=list)


# -- small readers ----------------------------------------------------------------------------


def _clean(text: str) -> str:
    """The text without NUL characters and with lone surrogates replaced (U+FFFD)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _short(value: Any) -> str:
    """A short, clean representation of a value for a problem line (never recursive)."""
    if isinstance(value, str):
        text = repr(_clean(value[:80]))
    elif isinstance(value, dict | list):
        text = f"<{type(value).__name__} of {len(value)}>"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        text = "<large integer>"
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


class _Cut:
    """Remembers whether :func:`_safe` had to cut something."""

    def __init__(self) -> None:
        self.cut = False


def _safe(value: Any, cut: _Cut, depth: int = 0) -> Any:
    """A JSON-storable copy: clean strings, finite numbers, bounded depth."""
    if isinstance(value, str):
        return _clean(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return value
        cut.cut = True
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        cut.cut = True
        return None
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        cut.cut = True
        return None
    if isinstance(value, list):
        return [_safe(item, cut, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            _clean(key) if isinstance(key, str) else _clean(str(key)): _safe(item, cut, depth + 1)
            for key, item in value.items()
        }
    cut.cut = True
    return None


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    """A required identifier: a non-blank string, or an integer."""
    if isinstance(value, str):
        text = _clean(value).strip()
        if text:
            return text
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    raise ParseError(f"{where}: expected a non-empty string, got {_short(value)}")


def _opt_str(value: Any) -> str | None:
    """An optional display string; numbers are accepted, anything else is None."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if -(10**18) < value < 10**18 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


def _digits_id(value: Any) -> str | None:
    """A WhatsApp id (``wa_id``): digits only; a leading ``+`` is dropped."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**20:
        return str(value)
    if isinstance(value, str):
        text = value.strip().removeprefix("+")
        if text.isascii() and text.isdigit() and len(text) <= 20:
            return text
    return None


def _sender(item: dict[str, Any], where: str) -> str:
    raw = item.get("from")
    sender = _digits_id(raw)
    if sender is not None:
        return sender
    user_id = item.get("from_user_id")
    if (raw is None or raw == "") and isinstance(user_id, str) and user_id:
        raise ParseError(
            f"{where}.from: no phone number, only a business-scoped user id"
            f" ({_short(user_id)}); not supported yet"
        )
    raise ParseError(f"{where}.from: {_short(raw)} is not a WhatsApp id")


def _timestamp(value: Any, where: str) -> datetime:
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= MAX_TIMESTAMP_DIGITS
    ):
        seconds = int(value)
    if seconds is not None and seconds >= 0:
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (ValueError, OverflowError, OSError):
            pass
    raise ParseError(f"{where}: timestamp {_short(value)} is not Unix seconds")


def _first_error(errors: Any) -> tuple[str | None, str | None]:
    """Code and title (with details) of the first readable error of an ``errors`` list."""
    if not isinstance(errors, list):
        return None, None
    for err in errors:
        if not isinstance(err, dict):
            continue
        code = _opt_str(err.get("code"))
        title = _opt_str(err.get("title")) or _opt_str(err.get("message")) or None
        details = err.get("error_data")
        detail = details.get("details") if isinstance(details, dict) else err.get("details")
        if isinstance(detail, str) and detail.strip() and _clean(detail) != title:
            detail = _clean(detail)
            title = f"{title.rstrip('. ')}: {detail}" if title else detail
        return code, title
    return None, None


# -- the delivery -----------------------------------------------------------------------------


@dataclass
class _Out:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_webhook(body: Any) -> ParseResult:
    if not isinstance(body, dict):
        raise ParseError(f"body: expected an object, got {type(body).__name__}")
    if body.get("object") != "whatsapp_business_account":
        raise ParseError(f"object is {_short(body.get('object'))}, not 'whatsapp_business_account'")
    out = _Out()
    entries = body.get("entry")
    if not isinstance(entries, list):
        out.problems.append(f"entry: expected a list, got {type(entries).__name__}")
        entries = []
    for e_index, entry in enumerate(entries):
        where = f"entry[{e_index}]"
        if not isinstance(entry, dict):
            out.problems.append(f"{where}: expected an object, got {type(entry).__name__}")
            continue
        changes = entry.get("changes")
        if not isinstance(changes, list):
            out.problems.append(f"{where}.changes: expected a list, got {type(changes).__name__}")
            continue
        for c_index, change in enumerate(changes):
            try:
                _parse_change(change, f"{where}.changes[{c_index}]", out)
            except ParseError as exc:
                out.problems.append(str(exc))
    return ParseResult(ParsedDelivery(out.messages, out.statuses, out.notes), out.problems)


def _parse_change(raw: Any, where: str, out: _Out) -> None:
    change = _obj(raw, where)
    field_name = change.get("field")
    if field_name != "messages":
        out.notes.append(f"{where}: field {_short(field_name)} kept, not acted on")
        return
    value = _obj(change.get("value"), f"{where}.value")
    where = f"{where}.value"
    metadata = _obj(value.get("metadata"), f"{where}.metadata")
    account_id = _str(metadata.get("phone_number_id"), f"{where}.metadata.phone_number_id")

    names: dict[str, str] = {}
    try:
        contacts = _list(value.get("contacts"), f"{where}.contacts")
    except ParseError as exc:
        out.problems.append(str(exc))
        contacts = []
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        wa_id = _digits_id(contact.get("wa_id"))
        profile = contact.get("profile")
        name = _opt_str(profile.get("name")) if isinstance(profile, dict) else None
        if wa_id is not None and name and name.strip():
            names.setdefault(wa_id, name.strip())

    for key, reader in (("messages", _read_message), ("statuses", _read_status)):
        try:
            items = _list(value.get(key), f"{where}.{key}")
        except ParseError as exc:
            out.problems.append(str(exc))
            continue
        for index, item in enumerate(items):
            try:
                reader(item, account_id, names, f"{where}.{key}[{index}]", out)
            except ParseError as exc:
                out.problems.append(str(exc))

    try:
        errors = _list(value.get("errors"), f"{where}.errors")
    except ParseError as exc:
        out.problems.append(str(exc))
        errors = []
    for err in errors:
        code, title = _first_error([err])
        out.notes.append(f"{where}: account error {code}: {title}")


def _read_status(raw: Any, account_id: str, names: dict[str, str], where: str, out: _Out) -> None:
    item = _obj(raw, where)
    status = _str(item.get("status"), f"{where}.status")
    status = STATUS_ALIASES.get(status, status)
    if status not in STATUS_VALUES:
        raise ParseError(f"{where}.status: unknown status {_short(status)}")
    code, title = _first_error(item.get("errors"))
    recipient = _opt_str(item.get("recipient_id"))
    out.statuses.append(
        StatusUpdate(
            account_id=account_id,
            external_id=_str(item.get("id"), f"{where}.id"),
            status=status,
            timestamp=_timestamp(item.get("timestamp"), f"{where}.timestamp"),
            recipient=(recipient.strip() or None) if recipient is not None else None,
            error_code=code,
            error_title=title,
            callback_data=_opt_str(item.get("biz_opaque_callback_data")),
        )
    )


def _read_message(raw: Any, account_id: str, names: dict[str, str], where: str, out: _Out) -> None:
    item = _obj(raw, where)
    external_id = _str(item.get("id"), f"{where}.id")
    sender = _sender(item, where)
    timestamp = _timestamp(item.get("timestamp"), f"{where}.timestamp")
    cut = _Cut()
    raw_kind = item.get("type")
    kind = _clean(raw_kind).strip() if isinstance(raw_kind, str) else ""
    text: str | None = None
    content: dict[str, Any]
    media: Media | None = None
    if kind in KNOWN_TYPES:
        try:
            text, content, media = _parse_body(kind, item, where, cut)
        except ParseError as exc:
            out.problems.append(f"{exc} (kept as unsupported; replay after an upgrade to read it)")
            content = {"unreadable_type": kind}
            kind = "unsupported"
        if kind == "unknown":  # the older name of "unsupported"
            kind = "unsupported"
    else:
        content = {"unknown_type": kind if isinstance(raw_kind, str) else None}
        out.problems.append(
            f"{where}: unknown message type {_short(raw_kind)}"
            " (kept as unsupported; replay after an upgrade to read it)"
        )
        kind = "unsupported"

    context = item.get("context")
    reply_to = None
    if isinstance(context, dict):
        reply_to = _opt_str(context.get("id")) or None
        for flag in ("forwarded", "frequently_forwarded"):
            if context.get(flag) is True:
                content[flag] = True
        if isinstance(context.get("referred_product"), dict):
            content["referred_product"] = _safe(context["referred_product"], cut)
    referral = item.get("referral")
    referral = _safe(referral, cut) if isinstance(referral, dict) else None
    if cut.cut:
        out.problems.append(f"{where}: values too deep or not storable were cut")
    out.messages.append(
        InboundMessage(
            account_id=account_id,
            external_id=external_id,
            sender=sender,
            sender_name=names.get(sender),
            timestamp=timestamp,
            type=kind,
            text=text,
            content=content,
            media=media,
            reply_to_external_id=reply_to,
            referral=referral,
        )
    )


def _parse_body(
    kind: str, item: dict[str, Any], where: str, cut: _Cut
) -> tuple[str | None, dict[str, Any], Media | None]:
    """The type's own object: the message's text, its structured content and its media."""
    content: dict[str, Any] = {}
    if kind in ("unsupported", "unknown", "request_welcome"):
        code, title = _first_error(item.get("errors"))
        if code or title:
            content = {"error_code": code, "error_title": title}
        detail = item.get(kind)
        if isinstance(detail, dict) and isinstance(detail.get("type"), str):
            content["unsupported_type"] = _clean(detail["type"])
        return None, content, None
    if kind == "contacts":
        cards = _list(item.get("contacts"), f"{where}.contacts")
        return None, {"contacts": _safe(cards, cut)}, None
    body = _obj(item.get(kind), f"{where}.{kind}")
    if kind == "text":
        text = body.get("body")
        if not isinstance(text, str):
            raise ParseError(f"{where}.text.body: expected a string, got {_short(text)}")
        return _clean(text), {}, None
    if kind in MEDIA_TYPES:
        media = Media(
            provider_id=_str(body.get("id"), f"{where}.{kind}.id"),
            mime_type=_opt_str(body.get("mime_type")),
            filename=_opt_str(body.get("filename")),
            sha256=_opt_str(body.get("sha256")),
            voice=body.get("voice") is True,
        )
        if media.voice:
            content["voice"] = True
        if body.get("animated") is True:
            content["animated"] = True
        return _opt_str(body.get("caption")), content, media
    if kind == "location":
        coordinates: dict[str, float] = {}
        for key in ("latitude", "longitude"):
            number = body.get(key)
            coordinate: float | None = None
            if isinstance(number, str | int | float) and not isinstance(number, bool):
                try:
                    coordinate = float(number)
                except (ValueError, OverflowError):
                    coordinate = None
            if coordinate is None or not math.isfinite(coordinate):
                raise ParseError(f"{where}.location.{key}: expected a number")
            coordinates[key] = coordinate
        content = dict(coordinates)
        for key in ("name", "address", "url"):
            if isinstance(body.get(key), str):
                content[key] = _clean(body[key])
        return _opt_str(body.get("name")), content, None
    if kind == "interactive":
        sub = _str(body.get("type"), f"{where}.interactive.type")
        reply = _obj(body.get(sub), f"{where}.interactive.{sub}")
        content = {**_safe(reply, cut), "interactive_type": sub}
        if isinstance(reply.get("response_json"), str):
            try:
                parsed = json.loads(reply["response_json"])
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                content["response"] = _safe(parsed, cut)
        text = _opt_str(reply.get("title")) or _opt_str(reply.get("body")) or None
        return text, content, None
    if kind == "button":
        text = _opt_str(body.get("text"))
        return text, {"payload": _opt_str(body.get("payload"))}, None
    if kind == "reaction":
        target = _str(body.get("message_id"), f"{where}.reaction.message_id")
        emoji = body.get("emoji")
        # Meta omits "emoji" when the customer removes a reaction (older payloads: "").
        return (
            None,
            {"message_id": target, "emoji": _clean(emoji) if isinstance(emoji, str) else ""},
            None,
        )
    if kind == "order":
        items = _list(body.get("product_items"), f"{where}.order.product_items")
        content = {
            "catalog_id": _opt_str(body.get("catalog_id")),
            "product_items": _safe(items, cut),
        }
        return _opt_str(body.get("text")), content, None
    # system: user_changed_number (older: customer_changed_number, customer_identity_changed)
    content = {key: _clean(value) for key, value in body.items() if isinstance(value, str)}
    return _opt_str(body.get("body")), content, None
