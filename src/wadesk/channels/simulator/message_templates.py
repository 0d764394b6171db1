"""Message templates per WhatsApp Business Account: create, review, list (paged), send checks."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wadesk.channels.simulator.errors import GraphError, invalid_parameter
from wadesk.channels.simulator.state import new_numeric_id

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
DEFAULT_FIELDS = ("name", "parameter_format", "components", "language", "status", "category", "id")
NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


def _placeholders(text: str | None) -> list[str]:
    """Distinct placeholders of a component's text, in order of first use."""
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def _parameter_text(parameter: Any) -> str:
    if not isinstance(parameter, dict):
        return ""
    kind = parameter.get("type")
    if kind == "text":
        return str(parameter.get("text", ""))
    if kind in ("currency", "date_time"):
        value = parameter.get(kind)
        return str(value.get("fallback_value", "")) if isinstance(value, dict) else ""
    return f"[{kind}]"


def _parameters_of(components: list[dict[str, Any]], kind: str) -> list[Any]:
    """The parameters a send request gives for one component (header, body...)."""
    for component in components:
        if str(component.get("type")).upper() == kind:
            given = component.get("parameters")
            return given if isinstance(given, list) else []
    return []


def _fill(text: str, values: list[Any]) -> str:
    """Placeholders replaced by named parameters, or by position."""
    by_name: dict[str, str] = {}
    for index, name in enumerate(_placeholders(text)):
        named = next(
            (p for p in values if isinstance(p, dict) and p.get("parameter_name") == name), None
        )
        if named is None and index < len(values):
            named = values[index]
        by_name[name] = _parameter_text(named)
    return PLACEHOLDER.sub(lambda m: by_name.get(m.group(1), m.group(0)), text)


@dataclass
class MessageTemplate:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str = "PENDING"
    parameter_format: str = "POSITIONAL"
    rejected_reason: str = "NONE"

    def component(self, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.components if str(c.get("type", "")).upper() == kind), None)

    def to_graph(self, fields: tuple[str, ...]) -> dict[str, Any]:
        every = {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }
        if self.status == "REJECTED":
            every["rejected_reason"] = self.rejected_reason
        shown = {key: every[key] for key in fields if key in every}
        shown["id"] = self.id  # Graph always answers with the id
        return shown

    def check_parameters(self, components: list[dict[str, Any]]) -> None:
        """Raise 132000 when a component's parameters do not match its placeholders."""
        for kind in ("HEADER", "BODY"):
            component = self.component(kind)
            expected = len(_placeholders(component.get("text") if component else None))
            count = len(_parameters_of(components, kind))
            if count != expected:
                raise GraphError(
                    132000,
                    f"{kind.lower()}: number of localizable_params ({count}) does not match "
                    f"the expected number of params ({expected})",
                )

    def render(self, components: list[dict[str, Any]]) -> dict[str, Any]:
        """What the customer's phone shows: texts filled in, and the quick-reply buttons."""
        texts: dict[str, str | None] = {}
        for kind in ("HEADER", "BODY", "FOOTER"):
            component = self.component(kind)
            text = component.get("text") if component else None
            texts[kind] = (
                _fill(text, _parameters_of(components, kind)) if isinstance(text, str) else None
            )
        return {
            "header": texts["HEADER"],
            "body": texts["BODY"] or "",
            "footer": texts["FOOTER"],
            "buttons": self._quick_replies(components),
        }

    def _quick_replies(self, components: list[dict[str, Any]]) -> list[dict[str, str]]:
        buttons = self.component("BUTTONS")
        replies: list[dict[str, str]] = []
        for index, button in enumerate(buttons.get("buttons", []) if buttons else []):
            if not isinstance(button, dict) or button.get("type") != "QUICK_REPLY":
                continue
            title = str(button.get("text", ""))
            payload = title
            for c in components:
                if c.get("type") == "button" and str(c.get("index")) == str(index):
                    params = c.get("parameters")
                    if isinstance(params, list) and params and isinstance(params[0], dict):
                        payload = str(params[0].get("payload", title))
            replies.append({"title": title, "payload": payload})
        return replies


def _approved(
    waba_id: str, name: str, language: str, category: str, components: list[dict[str, Any]]
) -> MessageTemplate:
    return MessageTemplate(
        new_numeric_id(), waba_id, name, language, category, components, "APPROVED"
    )


def _seed(waba_id: str) -> list[MessageTemplate]:
    return [
        _approved(
            waba_id,
            "hello_world",
            "en_US",
            "UTILITY",
            [
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {
                    "type": "BODY",
                    "text": "Welcome and congratulations!! This message demonstrates your "
                    "ability to send a WhatsApp message notification from the Cloud API, hosted "
                    "by Meta. Thank you for taking the time to test with us.",
                },
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
            ],
        ),
        _approved(
            waba_id,
            "order_update",
            "pt_BR",
            "UTILITY",
            [
                {
                    "type": "BODY",
                    "text": "Olá! Seu pedido {{1}} saiu para entrega e chega hoje.",
                    "example": {"body_text": [["#12345"]]},
                },
                {"type": "FOOTER", "text": "Responda a esta mensagem se precisar de ajuda."},
            ],
        ),
        _approved(
            waba_id,
            "seasonal_promotion",
            "en_US",
            "MARKETING",
            [
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, our {{2}} sale starts today: {{3}} off everything!",
                    "example": {"body_text": [["Maria", "summer", "25%"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Tell me more"},
                        {"type": "QUICK_REPLY", "text": "Stop promotions"},
                    ],
                },
            ],
        ),
    ]


@dataclass
class TemplateStore:
    templates: dict[str, list[MessageTemplate]] = field(default_factory=dict)  # by WABA id

    def ensure_waba(self, waba_id: str) -> None:
        """Give a new WABA the approved sample templates the demo uses."""
        if waba_id not in self.templates:
            self.templates[waba_id] = _seed(waba_id)

    def find(self, waba_id: str, name: str, language: str) -> MessageTemplate | None:
        return next(
            (
                t
                for t in self.templates.get(waba_id, [])
                if t.name == name and t.language == language
            ),
            None,
        )

    def by_id(self, template_id: str) -> MessageTemplate | None:
        for templates in self.templates.values():
            for template in templates:
                if template.id == template_id:
                    return template
        return None

    def create(self, waba_id: str, body: Any) -> MessageTemplate:
        if not isinstance(body, dict):
            raise invalid_parameter("The request body must be a JSON object.")
        name, language, category = body.get("name"), body.get("language"), body.get("category")
        components = body.get("components")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise invalid_parameter(
                "Param name must be lowercase letters, digits and underscores (1-512)."
            )
        if not isinstance(language, str) or not LANGUAGE_PATTERN.match(language):
            raise invalid_parameter("Param language must be a language code such as en_US.")
        if category not in CATEGORIES:
            raise invalid_parameter(f"Param category must be one of {', '.join(CATEGORIES)}.")
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise invalid_parameter("Param components must be a list of objects.")
        bodies = [c for c in components if str(c.get("type", "")).upper() == "BODY"]
        if category != "AUTHENTICATION" and (
            len(bodies) != 1 or not isinstance(bodies[0].get("text"), str) or not bodies[0]["text"]
        ):
            raise invalid_parameter("A template needs exactly one BODY component with text.")
        if bodies and len(str(bodies[0].get("text", ""))) > 1024:
            raise invalid_parameter("The BODY text must be at most 1024 characters.")
        if self.find(waba_id, name, language) is not None:
            raise GraphError(
                100,
                f"Content in this language already exists: {name} ({language})",
                subcode=2388024,
            )
        template = MessageTemplate(
            new_numeric_id(),
            waba_id,
            name,
            language,
            str(category),
            components,
            parameter_format=str(body.get("parameter_format", "POSITIONAL")).upper(),
        )
        self.templates.setdefault(waba_id, []).append(template)
        return template

    def review(self, template: MessageTemplate) -> None:
        """Meta's review, decided by name so tests can ask for either outcome."""
        if "reject" in template.name:
            template.status = "REJECTED"
            template.rejected_reason = "INVALID_FORMAT"
        else:
            template.status = "APPROVED"

    def page(
        self, waba_id: str, *, fields: str | None, limit: str | None, after: str | None, url: str
    ) -> dict[str, Any]:
        """One page of ``GET /{waba_id}/message_templates``, with Graph cursor paging."""
        chosen = tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None
        try:
            size = int(limit) if limit is not None else DEFAULT_LIMIT
        except ValueError as exc:
            raise invalid_parameter("Param limit must be an integer.") from exc
        size = max(1, min(size, MAX_LIMIT))
        start = _decode_cursor(after) + 1 if after else 0
        templates = self.templates.get(waba_id, [])
        window = templates[start : start + size]
        result: dict[str, Any] = {
            "data": [t.to_graph(chosen or DEFAULT_FIELDS) for t in window],
        }
        if window:
            paging: dict[str, Any] = {
                "cursors": {
                    "before": _encode_cursor(start),
                    "after": _encode_cursor(start + len(window) - 1),
                }
            }
            if start + len(window) < len(templates):
                query = {"limit": str(size), "after": paging["cursors"]["after"]}
                if fields:
                    query["fields"] = fields
                paging["next"] = f"{url}?{urlencode(query)}"
            result["paging"] = paging
        return result


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"tpl:{index}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("tpl:"):
            raise ValueError(cursor)
        return int(text[4:])
    except ValueError as exc:
        raise invalid_parameter("Param after is not a valid cursor.") from exc
