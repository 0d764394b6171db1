"""What a rule may say, checked before it is saved (the API and the admin pages share this).

Conditions (all given ones must hold)::

    {"keywords": ["order status", "pedido"], "match": "any" | "all",
     "regex": "order\\s*#?(?P<order>\\d{4,})",
     "contact": {"tier": "gold"},          # contact attributes (or "name"), case-insensitive
     "channel": "whatsapp",
     "hours": "open" | "closed",           # the inbox's business hours
     "language": ["pt", "es"],             # the detected language of the message (ISO 639-1)
     "minutes": 10}                        # trigger "waiting" only (and required there)

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
    {"type": "assign_team", "team": "Billing"}        # a team name or id; stored with team_id
    {"type": "buttons", "text": "How can we help?", "buttons": ["Track order", "Talk to a person"]}
    {"type": "list", "text": "Pick a topic", "button": "Choose",
     "sections": [{"title": "Orders", "rows": [{"id": "track", "title": "Track an order",
                                                "description": "Where is my parcel?"}]}]}
    {"type": "start_flow", "flow": "Orders"}          # a guided flow of the inbox (flows.py)
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
    "assign_team",
    "buttons",
    "list",
    "start_flow",
)
CONDITION_KEYS = (
    "keywords",
    "match",
    "regex",
    "contact",
    "channel",
    "hours",
    "language",
    "minutes",
)
# A "waiting" rule fires after 1 minute to 7 days without a reply.
MAX_WAITING_MINUTES = 10_080
MAX_ACTIONS = 20
MAX_KEYWORDS = 200
MAX_TEXT = 4096
MAX_LANGUAGES = 20
# WhatsApp's reply buttons: 1 to 3 buttons, titles of at most 20 characters (unique),
# a body of at most 1024 characters.
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTONS_BODY = 1024
# WhatsApp's list messages: a menu button (at most 20 characters) opening 1 to 10 sections
# of at most 10 rows in all; row titles of at most 24 characters, descriptions 72, section
# titles 24 (required when there are several sections), row ids 200 (unique).
MAX_LIST_ROWS = 10
MAX_LIST_BUTTON = 20
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_SECTION_TITLE = 24
MAX_ROW_ID = 200


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
    if "language" in conditions:
        clean["language"] = _languages(conditions["language"])
    if conditions.get("minutes") is not None:
        minutes = conditions["minutes"]
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 1 <= minutes <= MAX_WAITING_MINUTES
        ):
            raise RuleInvalid(
                "invalid_conditions",
                f"minutes is a whole number of minutes from 1 to {MAX_WAITING_MINUTES} (7 days).",
                "minutes",
            )
        clean["minutes"] = minutes
    return clean


def validate_trigger_conditions(trigger: str, conditions: dict[str, Any]) -> None:
    """A "waiting" rule needs ``minutes`` (how long the customer waits); no other trigger
    takes it. Checked on the rule as it will be saved (an update may change only one side)."""
    if trigger == "waiting" and "minutes" not in conditions:
        raise RuleInvalid(
            "invalid_conditions",
            "A 'waiting' rule needs conditions.minutes: how many minutes (1 to"
            f" {MAX_WAITING_MINUTES}) the customer's last message waits without a reply.",
            "minutes",
        )
    if trigger != "waiting" and "minutes" in conditions:
        raise RuleInvalid(
            "invalid_conditions",
            f"conditions.minutes is only for the 'waiting' trigger, not {trigger!r}.",
            "minutes",
        )


def _languages(value: Any) -> list[str]:
    """1 to 20 ISO 639-1 codes the routing module's detector knows, lower case, in order."""
    from wadesk.routing.language import supported

    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_LANGUAGES
        or not all(isinstance(code, str) for code in value)
    ):
        raise RuleInvalid(
            "invalid_conditions",
            f"language is a list of 1 to {MAX_LANGUAGES} two-letter ISO 639-1 codes,"
            ' e.g. ["pt", "es"].',
            "language",
        )
    codes = list(dict.fromkeys(code.strip().lower() for code in value))
    bad = [code for code in codes if not re.fullmatch(r"[a-z]{2}", code) or not supported(code)]
    if bad:
        raise RuleInvalid(
            "invalid_conditions",
            f"language: unknown or undetectable language code(s) {', '.join(map(repr, bad))};"
            " use two-letter ISO 639-1 codes such as pt, es, en.",
            "language",
        )
    return codes


def _reference(
    action: dict[str, Any], field: str, kind: str, known: dict[str, int] | None, where: str = ""
) -> dict[str, Any]:
    """``kind`` ("team", "flow") names one or gives its id; ``known`` maps casefolded names and
    ids (as text) to ids (None: not checked here). A rule saved earlier keeps working after a
    rename through the ``<kind>_id`` it stored."""
    given = action.get(kind)
    if isinstance(given, bool) or not isinstance(given, str | int) or not str(given).strip():
        raise RuleInvalid(
            "invalid_actions", f"{field}.{kind} names a {kind} or gives its id.", field
        )
    label = str(given).strip()
    key = f"{kind}_id"
    previous = action.get(key)
    if known is None:
        return {kind: label, key: previous if isinstance(previous, int) else None}
    found = known.get(label.casefold())
    if found is None and isinstance(previous, int) and str(previous) in known:
        found = previous
    if found is None:
        raise RuleInvalid(f"unknown_{kind}", f"{field}: no {kind} named {label!r}{where}.", field)
    return {kind: label, key: found}


def buttons_message(action: dict[str, Any], field: str) -> dict[str, Any]:
    """Reply buttons: ``{"text", "buttons": [titles]}``, checked (shared with flows)."""
    text = _text(action.get("text"), f"{field}.text", limit=MAX_BUTTONS_BODY)
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise RuleInvalid(
            "invalid_actions", f"{field}.buttons is a list of 1 to {MAX_BUTTONS} titles.", field
        )
    titles: list[str] = []
    for title in buttons:
        if not isinstance(title, str) or not title.strip():
            raise RuleInvalid("invalid_actions", f"{field}.buttons holds non-empty titles.", field)
        if len(title.strip()) > MAX_BUTTON_TITLE:
            raise RuleInvalid(
                "invalid_actions",
                f"{field}.buttons: {title.strip()!r} is longer than {MAX_BUTTON_TITLE}"
                " characters (WhatsApp's limit for a button title).",
                field,
            )
        titles.append(title.strip())
    if len({t.casefold() for t in titles}) != len(titles):
        raise RuleInvalid("invalid_actions", f"{field}.buttons must all differ.", field)
    return {"text": text, "buttons": titles}


def _short(value: Any, field: str, limit: int, what: str) -> str:
    """A required one-line text within one of WhatsApp's limits, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise RuleInvalid("invalid_actions", f"{field} needs a non-empty text.", field)
    if len(value.strip()) > limit:
        raise RuleInvalid(
            "invalid_actions",
            f"{field}: {value.strip()!r} is longer than {limit} characters"
            f" (WhatsApp's limit for {what}).",
            field,
        )
    return value.strip()


def list_message(action: dict[str, Any], field: str) -> dict[str, Any]:
    """A WhatsApp list message: ``text`` (the body), ``button`` (opens the list) and
    ``sections`` of rows ``{"id", "title", "description"?}``; a row without an id gets its
    title as id. Checked against WhatsApp's limits, so the Graph API never refuses it."""
    text = _text(action.get("text"), f"{field}.text", limit=MAX_BUTTONS_BODY)
    button = _short(action.get("button"), f"{field}.button", MAX_LIST_BUTTON, "the list button")
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise RuleInvalid(
            "invalid_actions", f"{field}.sections is a non-empty list of sections.", field
        )
    clean: list[dict[str, Any]] = []
    ids: set[str] = set()
    titles: set[str] = set()
    total = 0
    for number, section in enumerate(sections):
        where = f"{field}.sections[{number}]"
        if not isinstance(section, dict) or not isinstance(section.get("rows"), list):
            raise RuleInvalid("invalid_actions", f"{where} needs a list of rows.", where)
        out: dict[str, Any] = {}
        if section.get("title") is not None or len(sections) > 1:
            out["title"] = _short(
                section.get("title"), f"{where}.title", MAX_SECTION_TITLE, "a section title"
            )
        rows = []
        for index, row in enumerate(section["rows"]):
            at = f"{where}.rows[{index}]"
            if not isinstance(row, dict):
                raise RuleInvalid("invalid_actions", f"{at} is an object with a title.", at)
            title = _short(row.get("title"), f"{at}.title", MAX_ROW_TITLE, "a row title")
            row_id = _short(
                row.get("id") if row.get("id") is not None else title,
                f"{at}.id",
                MAX_ROW_ID,
                "a row id",
            )
            if row_id in ids or title.casefold() in titles:
                raise RuleInvalid(
                    "invalid_actions", f"{at}: row ids and titles must all differ.", at
                )
            ids.add(row_id)
            titles.add(title.casefold())
            item = {"id": row_id, "title": title}
            if row.get("description") not in (None, ""):
                item["description"] = _short(
                    row["description"], f"{at}.description", MAX_ROW_DESCRIPTION, "a description"
                )
            rows.append(item)
        if not rows:
            raise RuleInvalid("invalid_actions", f"{where}.rows is empty.", where)
        total += len(rows)
        clean.append({**out, "rows": rows})
    if total > MAX_LIST_ROWS:
        raise RuleInvalid(
            "invalid_actions",
            f"{field}.sections hold {total} rows; WhatsApp allows at most {MAX_LIST_ROWS}"
            " rows in a list message.",
            field,
        )
    return {"text": text, "button": button, "sections": clean}


def validate_actions(
    actions: Any,
    integration_names: set[str] | None = None,
    teams: dict[str, int] | None = None,
    flows: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """``integration_names``, ``teams`` and ``flows`` (casefolded name or id as text -> id),
    when given, are what must exist for the rule to be saved."""
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
        elif kind == "assign_team":
            out.update(_reference(action, field, "team", teams))
        elif kind == "buttons":
            out.update(buttons_message(action, field))
        elif kind == "list":
            out.update(list_message(action, field))
        elif kind == "start_flow":
            out.update(_reference(action, field, "flow", flows, " in this inbox"))
        clean.append(out)
    return clean
