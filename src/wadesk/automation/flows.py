"""Guided flows: a small state machine per conversation, defined as JSON (docs/automation.md).

A definition::

    {"start": "menu",
     "timeout_minutes": 30,              # a silent customer leaves the flow after this
     "keywords": ["menu"],               # optional: starts the flow when no rule answers
     "retries": 1,                       # an answer not understood is asked again this often,
     "on_unrecognised": "handoff",       # then "handoff" (or "end": the flow just stops)
     "retry_text": "Sorry, I did not get that.",
     "handoff_text": "A colleague will continue here shortly.",   # "" says nothing
     "steps": {
       "menu": {"text": "How can we help?", "buttons": ["Orders", "Opening hours"],
                "on": {"Orders": {"goto": "orders"},
                       "Opening hours": {"answer": "Mon-Fri 9-18."}}},
       "orders": {"text": "Pick one", "list": {"button": "Choose", "sections": [...]},
                  "on": {"track": {"answer": "...", "goto": "menu"},
                         "refund": {"handoff": "Refund request", "answer": "One moment."},
                         "*": {"handoff": "Something else"}}}}}

A step says ``text``, with reply ``buttons`` or a ``list`` (WhatsApp interactive messages), and
waits. ``on`` maps a choice to a transition: the key is a button's title, a list row's id (or
title), or any word or phrase the customer may type; ``"*"`` takes any other answer. A
transition sends its ``answer``, then goes to the step ``goto`` (sending its message), or hands
the conversation to a person (``handoff``: the note), or else ends the flow (completed).

Asking for a person ("agent", "atendente", "hablar con una persona"...) always works, at any
step. Everything here is pure: the worker loads the flow, keeps the per-conversation state
(``FlowState``) and applies a ``FlowTurn`` in its job's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wadesk.automation.engine import Buttons, Send, keyword_words, list_of
from wadesk.automation.rules import (
    MAX_BUTTONS_BODY,
    MAX_TEXT,
    RuleInvalid,
    buttons_message,
    list_message,
)
from wadesk.automation.text import normalise, render

DEFAULT_TIMEOUT_MINUTES = 30
MAX_TIMEOUT_MINUTES = 1440
MAX_STEPS = 50
MAX_CHOICES = 30
MAX_RETRIES = 3
MAX_KEYWORDS = 20
ANY = "*"
STEP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
DEFINITION_KEYS = (
    "start",
    "steps",
    "timeout_minutes",
    "keywords",
    "retries",
    "on_unrecognised",
    "retry_text",
    "handoff_text",
)
STEP_KEYS = ("text", "buttons", "list", "on")
TRANSITION_KEYS = ("goto", "answer", "handoff", "keywords")
DEFAULT_RETRY_TEXT = "Sorry, I did not get that."
DEFAULT_HANDOFF_TEXT = "Thanks — a colleague will continue this conversation shortly."
# "Talk to a person", normalised (no accents, lower case), in English, Portuguese and Spanish.
# Phrases match anywhere in a message; single words only in a short message (at most
# SHORT_MESSAGE words), so that "my person-to-person transfer" does not end a flow.
HANDOFF_PHRASES = (
    "agent",
    "human",
    "person",
    "operator",
    "representative",
    "talk to a person",
    "talk to someone",
    "talk to an agent",
    "talk to a human",
    "speak to a person",
    "speak to someone",
    "speak to an agent",
    "real person",
    "atendente",
    "humano",
    "pessoa",
    "falar com atendente",
    "falar com um atendente",
    "falar com uma pessoa",
    "falar com alguem",
    "atendimento humano",
    "persona",
    "agente",
    "asesor",
    "operador",
    "hablar con una persona",
    "hablar con un agente",
    "hablar con alguien",
)
SHORT_MESSAGE = 4
_PHRASES = [keyword_words(p) for p in HANDOFF_PHRASES]
# What the admin page's new-flow form starts from (docs/automation.md explains it).
EXAMPLE_DEFINITION: dict[str, Any] = {
    "start": "menu",
    "keywords": ["menu"],
    "timeout_minutes": 30,
    "steps": {
        "menu": {
            "text": "Hi {{contact.first_name|there}}! How can we help?",
            "buttons": ["Orders", "Opening hours", "Talk to a person"],
            "on": {
                "Orders": {"goto": "orders"},
                "Opening hours": {"answer": "We are open Monday to Friday, 9:00-18:00."},
                "Talk to a person": {"handoff": "Asked for a person from the menu"},
            },
        },
        "orders": {
            "text": "What about your order?",
            "list": {
                "button": "Choose",
                "sections": [
                    {
                        "title": "Orders",
                        "rows": [
                            {"id": "track", "title": "Track my order"},
                            {"id": "return", "title": "Return an item", "description": "30 days"},
                        ],
                    }
                ],
            },
            "on": {
                "track": {"answer": "Write 'order status' and your order number."},
                "return": {"handoff": "Return request", "answer": "A colleague will help."},
            },
        },
    },
}


def _invalid(field: str, message: str) -> RuleInvalid:
    return RuleInvalid("invalid_flow", f"{field}: {message}", field)


def _int(value: Any, field: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(field, f"a whole number from {low} to {high}.")
    return int(value)


def _string(value: Any, field: str, *, limit: int = MAX_TEXT, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise _invalid(field, "needs a non-empty text.")
    if len(value) > limit:
        raise _invalid(field, f"holds at most {limit} characters.")
    return value


def _keywords(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_KEYWORDS
        or not all(isinstance(k, str) and keyword_words(k) and len(k) <= 200 for k in value)
    ):
        raise _invalid(field, f"a list of at most {MAX_KEYWORDS} words or phrases.")
    return [k.strip() for k in value]


def _message(step: dict[str, Any], field: str) -> dict[str, Any]:
    """The step's text with its buttons or list, checked like the rule actions."""
    if "buttons" in step and "list" in step:
        raise _invalid(field, "a step has buttons or a list, not both.")
    try:
        if "buttons" in step:
            return buttons_message({"text": step.get("text"), "buttons": step["buttons"]}, field)
        if "list" in step:
            if not isinstance(step["list"], dict):
                raise _invalid(f"{field}.list", 'an object {"button": ..., "sections": [...]}.')
            checked = list_message({**step["list"], "text": step.get("text")}, f"{field}.list")
            return {"text": checked.pop("text"), "list": checked}
    except RuleInvalid as exc:
        raise RuleInvalid("invalid_flow", str(exc), exc.field) from exc
    return {"text": _string(step.get("text"), f"{field}.text")}


def _options(message: dict[str, Any]) -> list[tuple[str, ...]]:
    """Each offered choice (in order) as the texts naming it: a button's title; a row's id
    and title."""
    if "buttons" in message:
        return [(title,) for title in message["buttons"]]
    if "list" in message:
        return [
            (row["id"], row["title"])
            for section in message["list"]["sections"]
            for row in section["rows"]
        ]
    return []


def _transition(value: Any, field: str, steps: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise _invalid(
            field, 'a transition like {"goto": "step"}, {"answer": "..."} or {"handoff": "note"}.'
        )
    unknown = set(value) - set(TRANSITION_KEYS)
    if unknown:
        raise _invalid(
            f"{field}.{sorted(unknown)[0]}", f"unknown; use {', '.join(TRANSITION_KEYS)}."
        )
    out: dict[str, Any] = {}
    if "goto" in value:
        if value["goto"] not in steps:
            raise _invalid(f"{field}.goto", f"no step named {value['goto']!r}.")
        out["goto"] = value["goto"]
    if "answer" in value:
        out["answer"] = _string(value["answer"], f"{field}.answer")
    if "handoff" in value:
        if "goto" in out:
            raise _invalid(field, "a hand-off ends the flow: give goto or handoff, not both.")
        out["handoff"] = _string(value["handoff"] or "", f"{field}.handoff", empty=True)
    if not {"goto", "answer", "handoff"} & set(out):
        raise _invalid(field, "needs goto, answer or handoff.")
    keywords = _keywords(value.get("keywords"), f"{field}.keywords")
    if keywords:
        out["keywords"] = keywords
    return out


def _step(name: str, step: Any, steps: set[str]) -> dict[str, Any]:
    field = f"steps.{name}"
    if not isinstance(step, dict):
        raise _invalid(field, 'an object {"text": ..., "on": {...}}.')
    unknown = set(step) - set(STEP_KEYS)
    if unknown:
        raise _invalid(f"{field}.{sorted(unknown)[0]}", f"unknown; use {', '.join(STEP_KEYS)}.")
    out = _message(step, field)
    choices = step.get("on")
    if not isinstance(choices, dict) or not choices:
        raise _invalid(f"{field}.on", "maps the customer's choices to transitions.")
    if len(choices) > MAX_CHOICES:
        raise _invalid(f"{field}.on", f"at most {MAX_CHOICES} choices.")
    on: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for key, value in choices.items():
        where = f"{field}.on.{key}"
        if not key.strip() or len(key) > 200:
            raise _invalid(f"{field}.on", "choice keys are texts of 1 to 200 characters.")
        if normalise(key) in seen:
            raise _invalid(where, "the same choice twice.")
        seen.add(normalise(key))
        on[key.strip()] = _transition(value, where, steps)
    for names in _options(out):
        if not seen & {normalise(n) for n in names}:
            raise _invalid(f"{field}.on", f"no transition for the choice {names[-1]!r}.")
    out["on"] = on
    return out


def validate_definition(definition: Any) -> dict[str, Any]:
    """The definition, checked and tidied; ``RuleInvalid`` (code invalid_flow) names the
    field at fault, e.g. ``steps.menu.on.Orders.goto: no step named 'ordrs'.``"""
    if not isinstance(definition, dict):
        raise _invalid("definition", "a JSON object with start and steps.")
    unknown = set(definition) - set(DEFINITION_KEYS)
    if unknown:
        raise _invalid(sorted(unknown)[0], f"unknown; use {', '.join(DEFINITION_KEYS)}.")
    steps = definition.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise _invalid("steps", "an object of named steps.")
    if len(steps) > MAX_STEPS:
        raise _invalid("steps", f"at most {MAX_STEPS} steps.")
    for name in steps:
        if not STEP_NAME.match(name):
            raise _invalid(f"steps.{name}", "step names are letters, digits, _ and - (64 at most).")
    start = definition.get("start")
    if not isinstance(start, str) or not start:
        raise _invalid("start", "names the first step.")
    if start not in steps:
        raise _invalid("start", f"no step named {start!r}.")
    names = set(steps)
    on_unrecognised = definition.get("on_unrecognised", "handoff")
    if on_unrecognised not in ("handoff", "end"):
        raise _invalid("on_unrecognised", "'handoff' or 'end'.")
    clean: dict[str, Any] = {
        "start": start,
        "timeout_minutes": _int(
            definition.get("timeout_minutes"),
            "timeout_minutes",
            DEFAULT_TIMEOUT_MINUTES,
            1,
            MAX_TIMEOUT_MINUTES,
        ),
        "retries": _int(definition.get("retries"), "retries", 1, 0, MAX_RETRIES),
        "on_unrecognised": on_unrecognised,
    }
    keywords = _keywords(definition.get("keywords"), "keywords")
    if keywords:
        clean["keywords"] = keywords
    for key in ("retry_text", "handoff_text"):
        if definition.get(key) is not None:
            clean[key] = _string(definition[key], key, limit=MAX_BUTTONS_BODY, empty=True)
    clean["steps"] = {name: _step(name, step, names) for name, step in steps.items()}
    return clean


# ---------------------------------------------------------------- running a flow


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """One version of a flow, as the worker runs it."""

    id: int
    name: str
    version: int
    definition: dict[str, Any]

    @property
    def timeout_minutes(self) -> int:
        return int(self.definition.get("timeout_minutes", DEFAULT_TIMEOUT_MINUTES))


@dataclass(slots=True)
class FlowTurn:
    """What the start of a flow or one customer message in it does."""

    sends: list[Send] = field(default_factory=list)
    step: str | None = None  # where the flow waits next; None: it is over
    retries: int = 0
    # When over: "completed" (an answer ended it), "handed_off", or "ended" (not understood).
    outcome: str | None = None
    handoff_note: str | None = None
    trace: str = ""


def wants_person(text: str) -> bool:
    """The customer asks for a person: a phrase anywhere, a single word in a short message."""
    words = keyword_words(text)
    for phrase in _PHRASES:
        if len(phrase) == 1 and len(words) > SHORT_MESSAGE:
            continue
        for start in range(len(words) - len(phrase) + 1):
            if words[start : start + len(phrase)] == phrase:
                return True
    return False


def step_message(
    spec: FlowSpec, name: str, context: dict[str, Any], prefix: str | None = None
) -> Send:
    step = spec.definition["steps"][name]
    text = render(step["text"], context)
    if prefix:
        text = f"{prefix}\n\n{text}"
    if "buttons" in step:
        return Buttons(text, tuple(step["buttons"]), id_prefix=f"flow:{spec.id}:{name}")
    if "list" in step:
        return list_of({**step["list"], "text": text}, context)
    return text


def start(spec: FlowSpec, context: dict[str, Any]) -> FlowTurn:
    first = spec.definition["start"]
    return FlowTurn(
        sends=[step_message(spec, first, context)], step=first, trace=f"flow {spec.name}: start"
    )


def _key_for(on: dict[str, Any], names: tuple[str, ...]) -> str | None:
    wanted = {normalise(n) for n in names}
    return next((key for key in on if normalise(key) in wanted), None)


def _explicit(spec: FlowSpec, name: str, text: str, reply_id: str | None) -> str | None:
    """The choice a tap (reply id) or an exact answer names."""
    step = spec.definition["steps"][name]
    on: dict[str, Any] = step["on"]
    options = _options(step)
    if reply_id:
        prefix = f"flow:{spec.id}:{name}:"
        if reply_id.startswith(prefix) and reply_id[len(prefix) :].isdigit():
            number = int(reply_id[len(prefix) :])
            if 1 <= number <= len(options):
                return _key_for(on, options[number - 1])
        for names in options:
            if reply_id == names[0]:
                return _key_for(on, names)
    said = normalise(text)
    if not said:
        return None
    for names in options:
        if said in {normalise(n) for n in names}:
            return _key_for(on, names)
    for key, transition in on.items():
        if key != ANY and (
            normalise(key) == said or said in {normalise(k) for k in transition.get("keywords", [])}
        ):
            return key
    return None


def _loose(spec: FlowSpec, name: str, text: str) -> str | None:
    """An option's number ("2"), a choice's words within the answer, or the ``*`` choice."""
    step = spec.definition["steps"][name]
    on: dict[str, Any] = step["on"]
    options = _options(step)
    said = text.strip()
    if said.isdigit() and 1 <= int(said) <= len(options):
        return _key_for(on, options[int(said) - 1])
    words = keyword_words(text)
    for key, transition in on.items():
        if key == ANY:
            continue
        for phrase in (key, *transition.get("keywords", [])):
            wanted = keyword_words(phrase)
            if wanted and any(
                tuple(words[i : i + len(wanted)]) == wanted
                for i in range(len(words) - len(wanted) + 1)
            ):
                return key
    return ANY if ANY in on else None


def _handoff(spec: FlowSpec, note: str, answer: str | None, context: dict[str, Any]) -> FlowTurn:
    """``answer``: the transition's own (rendered) answer; else the flow's handoff_text."""
    if answer is None:
        answer = render(spec.definition.get("handoff_text", DEFAULT_HANDOFF_TEXT), context)
    return FlowTurn(
        sends=[answer] if answer.strip() else [],
        outcome="handed_off",
        handoff_note=note,
    )


def advance(
    spec: FlowSpec,
    name: str,
    retries: int,
    text: str,
    reply_id: str | None,
    context: dict[str, Any],
) -> FlowTurn:
    """The customer answered at step ``name``: where to go, what to say."""
    definition = spec.definition
    where = f"flow “{spec.name}” (v{spec.version}) at step “{name}”"
    if name not in definition["steps"]:  # cannot happen: versions never change
        return FlowTurn(outcome="ended", trace=f"flow {spec.name}: unknown step {name}")
    choice = _explicit(spec, name, text, reply_id)
    if choice is None and wants_person(text):
        turn = _handoff(spec, f"The customer asked for a person in {where}.", None, context)
        turn.trace = f"flow {spec.name}: asked for a person"
        return turn
    if choice is None:
        choice = _loose(spec, name, text)
    if choice is None:
        if retries < definition.get("retries", 1):
            prefix = definition.get("retry_text", DEFAULT_RETRY_TEXT)
            return FlowTurn(
                sends=[step_message(spec, name, context, prefix=prefix)],
                step=name,
                retries=retries + 1,
                trace=f"flow {spec.name}: asked {name} again",
            )
        if definition.get("on_unrecognised", "handoff") == "end":
            return FlowTurn(outcome="ended", trace=f"flow {spec.name}: not understood, ended")
        turn = _handoff(
            spec,
            f"The customer's answer was not understood in {where}: “{text[:200]}”.",
            None,
            context,
        )
        turn.trace = f"flow {spec.name}: not understood, handed off"
        return turn
    transition = definition["steps"][name]["on"][choice]
    answer = render(transition["answer"], context) if "answer" in transition else None
    if "handoff" in transition:
        note = transition["handoff"] or f"The customer chose “{choice}” in {where}."
        turn = _handoff(spec, note, answer, context)
        turn.trace = f"flow {spec.name}: {choice} -> handoff"
        return turn
    sends: list[Send] = [answer] if answer else []
    if "goto" in transition:
        sends.append(step_message(spec, transition["goto"], context))
        goto = transition["goto"]
        return FlowTurn(sends=sends, step=goto, trace=f"flow {spec.name}: {choice} -> {goto}")
    return FlowTurn(sends=sends, outcome="completed", trace=f"flow {spec.name}: {choice} -> done")


def describe(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """A readable preview of a (valid) definition: each step's message and where each
    choice leads, the start first."""
    steps: dict[str, Any] = definition["steps"]
    order = [definition["start"], *(n for n in steps if n != definition["start"])]
    preview = []
    for name in order:
        step = steps[name]
        offered = [names[-1] for names in _options(step)]
        kind = "buttons" if "buttons" in step else "list" if "list" in step else "text"
        choices = []
        for key, transition in step["on"].items():
            then = []
            if "answer" in transition:
                then.append(f"answers “{transition['answer']}”")
            if "goto" in transition:
                then.append(f"goes to {transition['goto']}")
            elif "handoff" in transition:
                note = f" ({transition['handoff']})" if transition["handoff"] else ""
                then.append(f"hands off to a person{note}")
            else:
                then.append("ends the flow")
            label = "anything else" if key == ANY else key
            if transition.get("keywords"):
                label += f" (or: {', '.join(transition['keywords'])})"
            choices.append({"choice": label, "then": ", then ".join(then)})
        preview.append(
            {
                "name": name,
                "start": name == definition["start"],
                "kind": kind,
                "text": step["text"],
                "button": step["list"]["button"] if "list" in step else None,
                "offered": offered,
                "choices": choices,
            }
        )
    return preview
