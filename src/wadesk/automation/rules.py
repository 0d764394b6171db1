"""What a rule may say, checked before it is saved (the API and the admin pages share this).

Conditions (all given ones must hold)::

    {"keywords": ["order status", "pedido"], "match": "any" | "all",
     "regex": "order\\s*#?(?P<order>\\d{4,})",
     "contact": {"tier": "gold"},          # contact attributes (or "name"), case-insensitive
     "channel": "whatsapp",
     "hours": "open" | "closed"}           # the inbox's business hours

Actions (run in order)::

    {"type": "reply", "text": "Hi {{contact.first_name|there}}"}
    {"type": "quick_reply", "shortcut": "refund"}
    {"type": "ask", "capture": "order", "pattern": "\\d{4,}", "text": "Your order number?"}
    {"type": "integration", "integration": "orders", "reply": "...{{result.status}}...",
     "not_found_reply": "...", "fallback_reply": "...", "note": "..."}
    {"type": "add_label", "label": "orders"}
    {"type": "set_priority", "priority": "high"}
    {"type": "handoff", "note": "Customer asks for a refund"}
    {"type": "resolve"}
"""

from __future__ import annotations

import re
from typing import Any

from wadesk.automation.models import TRIGGERS
from wadesk.conversations.models import PRIORITIES

ACTION_TYPES = (
    "reply",
    "quick_reply",
    "ask",
    "integration",
    "add_label",
    "set_priority",
    "handoff",
    "resolve",
)
CONDITION_KEYS = ("keywords", "match", "regex", "contact", "channel", "hours")
MAX_ACTIONS = 20
MAX_KEYWORDS = 200
MAX_TEXT = 4096


class RuleInvalid(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def _text(value: Any, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RuleInvalid("invalid_action", f"{field} needs a non-empty text.", field)
    if len(value) > limit:
        raise RuleInvalid("invalid_action", f"{field} holds at most {limit} characters.", field)
    return value


def _regex(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise RuleInvalid("invalid_regex", f"{field} must be a regular expression.", field)
    if len(value) > 500:
        raise RuleInvalid("invalid_regex", f"{field} holds at most 500 characters.", field)
    try:
        re.compile(value)
    except re.error as exc:
        raise RuleInvalid("invalid_regex", f"{field}: {exc}", field) from exc
    return value


def validate_trigger(trigger: str) -> str:
    if trigger not in TRIGGERS:
        raise RuleInvalid(
            "invalid_trigger", f"trigger must be one of {', '.join(TRIGGERS)}.", "trigger"
        )
    return trigger


def validate_conditions(conditions: Any) -> dict[str, Any]:
    if conditions is None:
        return {}
    if not isinstance(conditions, dict):
        raise RuleInvalid("invalid_conditions", "conditions must be an object.", "conditions")
    unknown = set(conditions) - set(CONDITION_KEYS)
    if unknown:
        raise RuleInvalid(
            "invalid_conditions",
            f"Unknown condition(s) {', '.join(sorted(unknown))}; use {', '.join(CONDITION_KEYS)}.",
            "conditions",
        )
    clean: dict[str, Any] = {}
    keywords = conditions.get("keywords")
    if keywords is not None:
        if not isinstance(keywords, list) or not all(
            isinstance(k, str) and k.strip() and len(k) <= 200 for k in keywords
        ):
            raise RuleInvalid(
                "invalid_conditions", "keywords is a list of non-empty texts.", "keywords"
            )
        if len(keywords) > MAX_KEYWORDS:
            raise RuleInvalid("invalid_conditions", "At most 200 keywords.", "keywords")
        if keywords:
            clean["keywords"] = [k.strip() for k in keywords]
    match = conditions.get("match", "any")
    if match not in ("any", "all"):
        raise RuleInvalid("invalid_conditions", "match is 'any' or 'all'.", "match")
    if "keywords" in clean and match == "all":
        clean["match"] = "all"
    if conditions.get("regex"):
        clean["regex"] = _regex(conditions["regex"], "regex")
    contact = conditions.get("contact")
    if contact:
        if not isinstance(contact, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool)
            for k, v in contact.items()
        ):
            raise RuleInvalid(
                "invalid_conditions", "contact maps attribute names to values.", "contact"
            )
        clean["contact"] = {k: str(v) for k, v in contact.items()}
    if conditions.get("channel"):
        if not isinstance(conditions["channel"], str):
            raise RuleInvalid("invalid_conditions", "channel is a channel type.", "channel")
        clean["channel"] = conditions["channel"]
    if conditions.get("hours"):
        if conditions["hours"] not in ("open", "closed"):
            raise RuleInvalid("invalid_conditions", "hours is 'open' or 'closed'.", "hours")
        clean["hours"] = conditions["hours"]
    return clean


def validate_actions(
    actions: Any, integration_names: set[str] | None = None
) -> list[dict[str, Any]]:
    if not isinstance(actions, list) or not actions:
        raise RuleInvalid("invalid_actions", "actions is a non-empty list.", "actions")
    if len(actions) > MAX_ACTIONS:
        raise RuleInvalid("invalid_actions", f"At most {MAX_ACTIONS} actions.", "actions")
    clean = []
    for index, action in enumerate(actions):
        field = f"actions[{index}]"
        if not isinstance(action, dict) or action.get("type") not in ACTION_TYPES:
            raise RuleInvalid(
                "invalid_actions",
                f"{field}.type must be one of {', '.join(ACTION_TYPES)}.",
                field,
            )
        kind = action["type"]
        out: dict[str, Any] = {"type": kind}
        if kind == "reply":
            out["text"] = _text(action.get("text"), f"{field}.text")
        elif kind == "quick_reply":
            out["shortcut"] = _text(action.get("shortcut"), f"{field}.shortcut", limit=60)
        elif kind == "ask":
            capture = action.get("capture")
            if not isinstance(capture, str) or not re.fullmatch(
                r"[A-Za-z_][A-Za-z0-9_]{0,30}", capture
            ):
                raise RuleInvalid(
                    "invalid_actions", f"{field}.capture is a name like 'order'.", field
                )
            out["capture"] = capture
            out["pattern"] = _regex(action.get("pattern"), f"{field}.pattern")
            out["text"] = _text(action.get("text"), f"{field}.text")
            minutes = action.get("timeout_minutes", 30)
            if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
                raise RuleInvalid(
                    "invalid_actions", f"{field}.timeout_minutes is 1 to 1440.", field
                )
            out["timeout_minutes"] = minutes
        elif kind == "integration":
            name = action.get("integration")
            if not isinstance(name, str) or not name:
                raise RuleInvalid("invalid_actions", f"{field}.integration names one.", field)
            if integration_names is not None and name not in integration_names:
                raise RuleInvalid("unknown_integration", f"No integration named {name!r}.", field)
            out["integration"] = name
            out["reply"] = _text(action.get("reply"), f"{field}.reply")
            for optional in ("not_found_reply", "fallback_reply", "note"):
                if action.get(optional):
                    out[optional] = _text(action[optional], f"{field}.{optional}")
        elif kind == "add_label":
            out["label"] = _text(action.get("label"), f"{field}.label", limit=60)
        elif kind == "set_priority":
            if action.get("priority") not in PRIORITIES:
                raise RuleInvalid(
                    "invalid_actions",
                    f"{field}.priority is one of {', '.join(PRIORITIES)}.",
                    field,
                )
            out["priority"] = action["priority"]
        elif kind == "handoff":
            out["note"] = _text(action.get("note"), f"{field}.note", required=False)
        clean.append(out)
    return clean
