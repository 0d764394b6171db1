"""Checks on ``POST /{phone_number_id}/messages`` bodies, answering with Meta's error codes.

Missing or malformed parameters give code 100, values out of bounds 131009, templates that do
not exist (or are not approved) in the language 132001, a parameter count mismatch 132000.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wadesk.channels.simulator.errors import GraphError, invalid_parameter
from wadesk.channels.simulator.media import MediaStore
from wadesk.channels.simulator.message_templates import MessageTemplate, TemplateStore
from wadesk.channels.simulator.state import BusinessNumber, digits

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
MESSAGE_TYPES = (
    "text",
    *MEDIA_TYPES,
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
)
INTERACTIVE_TYPES = (
    "button",
    "list",
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
)
MAX_TEXT = 4096
MAX_CAPTION = 1024


@dataclass(frozen=True)
class ValidSend:
    to: str  # as the client wrote it
    recipient: str  # digits only
    type: str
    template: MessageTemplate | None = None


def _value_error(details: str) -> GraphError:
    return GraphError(131009, details)


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if obj.get(key) in (None, ""):
        raise invalid_parameter(f"The parameter {where}['{key}'] is required.")
    return obj[key]


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise invalid_parameter(f"The parameter {key} is required and must be an object.")
    return value


def _text_within(value: Any, where: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise invalid_parameter(f"Param {where} must be a string.")
    if not low <= len(value) <= high:
        raise invalid_parameter(f"Param {where} must be between {low} and {high} characters long.")
    return value


def validate_send(
    body: Any, *, number: BusinessNumber, media: MediaStore, templates: TemplateStore
) -> ValidSend:
    if not isinstance(body, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise invalid_parameter("Param recipient_type must be 'individual'.")
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid_parameter("The parameter to is required.")
    recipient = digits(to)
    if not 8 <= len(recipient) <= 15 or not all(c in "+0123456789 -()." for c in to):
        raise invalid_parameter(f"Param to '{to}' is not a valid phone number.")
    kind = body.get("type", "text")  # Meta's default type
    if kind not in MESSAGE_TYPES:
        raise invalid_parameter(f"Param type must be one of {{{', '.join(MESSAGE_TYPES)}}}.")
    context = body.get("context")
    if context is not None and (
        not isinstance(context, dict) or not isinstance(context.get("message_id"), str)
    ):
        raise invalid_parameter("Param context must be an object with a message_id.")
    template = None
    if kind == "text":
        text = _object(body, "text")
        _text_within(_required(text, "body", "text"), "text['body']", 1, MAX_TEXT)
    elif kind in MEDIA_TYPES:
        _check_media(_object(body, kind), kind, number, media)
    elif kind == "location":
        _check_location(_object(body, "location"))
    elif kind == "contacts":
        _check_contacts(body.get("contacts"))
    elif kind == "interactive":
        _check_interactive(_object(body, "interactive"))
    elif kind == "template":
        template = _check_template(_object(body, "template"), number, templates)
    else:
        reaction = _object(body, "reaction")
        _required(reaction, "message_id", "reaction")
        if not isinstance(reaction.get("emoji", ""), str):
            raise invalid_parameter("Param reaction['emoji'] must be a string.")
    return ValidSend(to=to, recipient=recipient, type=kind, template=template)


def _check_media(obj: dict[str, Any], kind: str, number: BusinessNumber, media: MediaStore) -> None:
    media_id, link = obj.get("id"), obj.get("link")
    if bool(media_id) == bool(link):
        raise invalid_parameter(f"Param {kind} must have exactly one of 'id' or 'link'.")
    if media_id:
        item = media.get(str(media_id))
        if item is None or item.phone_number_id != number.phone_number_id:
            raise invalid_parameter(
                f"Param {kind}['id'] is not a valid whatsapp business account media attachment ID"
            )
    elif not isinstance(link, str) or not link.startswith(("http://", "https://")):
        raise invalid_parameter(f"Param {kind}['link'] must be an http(s) URL.")
    caption = obj.get("caption")
    if caption is not None:
        if kind in ("audio", "sticker"):
            raise invalid_parameter(f"Param {kind}['caption'] is not supported for {kind}.")
        _text_within(caption, f"{kind}['caption']", 0, MAX_CAPTION)


def _check_location(obj: dict[str, Any]) -> None:
    for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
        value = obj.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            try:
                value = float(str(value))
            except ValueError as exc:
                raise invalid_parameter(f"Param location['{key}'] must be a number.") from exc
        if not -bound <= float(value) <= bound:
            raise _value_error(f"Param location['{key}'] is out of range.")


def _check_contacts(contacts: Any) -> None:
    if not isinstance(contacts, list) or not contacts:
        raise invalid_parameter("The parameter contacts is required and must be a list.")
    for contact in contacts:
        name = contact.get("name") if isinstance(contact, dict) else None
        if not isinstance(name, dict) or not name.get("formatted_name"):
            raise invalid_parameter(
                "The parameter contacts[]['name']['formatted_name'] is required."
            )


def _check_interactive(obj: dict[str, Any]) -> None:
    kind = obj.get("type")
    if kind not in INTERACTIVE_TYPES:
        raise invalid_parameter(
            f"Param interactive['type'] must be one of {{{', '.join(INTERACTIVE_TYPES)}}}."
        )
    action = _object(obj, "action")
    if kind in ("button", "list", "cta_url", "flow"):
        body = _object(obj, "body")
        _text_within(_required(body, "text", "interactive['body']"), "body text", 1, MAX_CAPTION)
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _value_error("Buttons count invalid. Min: 1, Max: 3.")
        titles = []
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or button.get("type") != "reply":
                raise invalid_parameter("Each button must be {'type': 'reply', 'reply': {...}}.")
            _required(reply, "id", "reply")
            title = reply.get("title")
            if not isinstance(title, str) or not 1 <= len(title) <= 20:
                raise _value_error("Button title length invalid. Min length: 1, Max length: 20.")
            titles.append(title)
        if len(set(titles)) != len(titles):
            raise _value_error("Button titles must be unique.")
    elif kind == "list":
        label = action.get("button")
        if not isinstance(label, str) or not 1 <= len(label) <= 20:
            raise _value_error("Button text length invalid. Min length: 1, Max length: 20.")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise _value_error("Sections count invalid. Min: 1, Max: 10.")
        rows = [
            row
            for section in sections
            if isinstance(section, dict)
            for row in section.get("rows", [])
        ]
        if not 1 <= len(rows) <= 10:
            raise _value_error("Total row count invalid. Min: 1, Max: 10.")
        for row in rows:
            if not isinstance(row, dict) or not row.get("id"):
                raise invalid_parameter("Each row needs an id.")
            title = row.get("title")
            if not isinstance(title, str) or not 1 <= len(title) <= 24:
                raise _value_error("Row title length invalid. Min length: 1, Max length: 24.")
    elif kind == "cta_url":
        parameters = action.get("parameters")
        if action.get("name") != "cta_url" or not isinstance(parameters, dict):
            raise invalid_parameter("Param action must name 'cta_url' and give parameters.")
        _required(parameters, "display_text", "parameters")
        url = _required(parameters, "url", "parameters")
        if not str(url).startswith(("http://", "https://")):
            raise _value_error("Param parameters['url'] must be an http(s) URL.")


def _check_template(
    obj: dict[str, Any], number: BusinessNumber, templates: TemplateStore
) -> MessageTemplate:
    name = _required(obj, "name", "template")
    language = obj.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not code:
        raise invalid_parameter("The parameter template['language']['code'] is required.")
    template = templates.find(number.waba_id, str(name), code)
    if template is None or template.status != "APPROVED":
        raise GraphError(132001, f"template name ({name}) does not exist in {code}")
    components = obj.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid_parameter("Param template['components'] must be a list of objects.")
    template.check_parameters(components)
    return template
