"""The rules engine: compile an inbox's rules once, evaluate a message in microseconds, then
run the chosen rule's actions (calling integrations) into a list of effects.

Evaluation is pure (no I/O). Running a rule may call HTTP integrations and touches no
database: the worker applies the effects afterwards in one transaction, with the job's
completion, so a crash between the two re-runs the job instead of losing it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from wadesk.automation.text import normalise, render
from wadesk.httpclient import HttpClient, HttpError

WORD = re.compile(r"\w+")
DEFAULT_NOT_FOUND = (
    "Sorry, I could not find that. A colleague will look into it and get back to you."
)
DEFAULT_FALLBACK = "Thanks for your message — a colleague will get back to you shortly."


@dataclass(slots=True)
class CompiledRule:
    id: int
    inbox_id: int
    name: str
    trigger: str
    after_handoff: bool
    actions: list[dict[str, Any]]
    # Keywords as normalised word sequences: "Where is my ORDER" -> ("where", "is", "my", "order")
    keywords: list[tuple[str, ...]] = field(default_factory=list)
    match_all: bool = False
    regex: re.Pattern[str] | None = None
    contact: dict[str, str] = field(default_factory=dict)
    channel: str | None = None
    hours: str | None = None
    languages: frozenset[str] | None = None
    asks: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)


@dataclass(slots=True)
class TriggerRules:
    """One trigger's rules in order, and an index from a keyword's first word to the rules
    using it: a message only looks at the rules whose keywords start with one of its words
    (and at the rules without keywords), whatever the number of rules."""

    rules: list[CompiledRule] = field(default_factory=list)
    index: dict[str, list[tuple[int, int, tuple[str, ...]]]] = field(default_factory=dict)
    unindexed: list[int] = field(default_factory=list)

    def add(self, rule: CompiledRule) -> None:
        position = len(self.rules)
        self.rules.append(rule)
        if not rule.keywords:
            self.unindexed.append(position)
            return
        for number, words in enumerate(rule.keywords):
            self.index.setdefault(words[0], []).append((position, number, words))


@dataclass(slots=True)
class RuleSet:
    by_trigger: dict[str, TriggerRules]
    by_id: dict[int, CompiledRule]
    # Every language a rule's condition names: the message's language is detected only when
    # some rule needs it, among these (and routing's configured languages, see the worker).
    languages: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.by_id)


def keyword_words(keyword: str) -> tuple[str, ...]:
    return tuple(WORD.findall(normalise(keyword)))


def compile_rule(row: Any) -> CompiledRule:
    conditions: dict[str, Any] = row.conditions or {}
    rule = CompiledRule(
        id=row.id,
        inbox_id=row.inbox_id,
        name=row.name,
        trigger=row.trigger,
        after_handoff=row.after_handoff,
        actions=list(row.actions or []),
        contact={k.casefold(): normalise(v) for k, v in (conditions.get("contact") or {}).items()},
        channel=conditions.get("channel"),
        hours=conditions.get("hours"),
        match_all=conditions.get("match") == "all",
        languages=frozenset(conditions["language"]) if conditions.get("language") else None,
    )
    words = [keyword_words(k) for k in conditions.get("keywords") or []]
    rule.keywords = list(dict.fromkeys(w for w in words if w))
    if conditions.get("regex"):
        rule.regex = re.compile(conditions["regex"], re.IGNORECASE)
    for action in rule.actions:
        if action.get("type") == "ask":
            rule.asks.append((action["capture"], re.compile(action["pattern"], re.IGNORECASE)))
    return rule


def compile_rules(
    rows: Iterable[Any], cache: dict[int, tuple[Any, CompiledRule]] | None = None
) -> RuleSet:
    """Compile enabled rules in order. ``cache`` (rule id -> (updated_at, compiled)) lets a
    change recompile only the rules that changed."""
    by_trigger: dict[str, TriggerRules] = {}
    by_id: dict[int, CompiledRule] = {}
    languages: set[str] = set()
    for row in sorted(rows, key=lambda r: (r.position, r.id)):
        if not row.enabled:
            continue
        stamp = getattr(row, "updated_at", None)
        cached = cache.get(row.id) if cache is not None else None
        if cached is not None and stamp is not None and cached[0] == stamp:
            rule = cached[1]
        else:
            rule = compile_rule(row)
            if cache is not None:
                cache[row.id] = (stamp, rule)
        by_trigger.setdefault(rule.trigger, TriggerRules()).add(rule)
        by_id[rule.id] = rule
        languages |= rule.languages or set()
    return RuleSet(by_trigger, by_id, frozenset(languages))


@dataclass(slots=True)
class Facts:
    """What conditions look at, prepared once per message."""

    text: str
    normalised: str
    words: list[str]
    contact: dict[str, str]  # casefolded attribute name -> normalised value
    channel: str
    open_now: bool
    # The detected ISO 639-1 code, None when not detected or not sure.
    language: str | None = None

    @classmethod
    def of(
        cls,
        text: str | None,
        contact: dict[str, Any],
        channel: str,
        open_now: bool,
        language: str | None = None,
    ) -> Facts:
        raw = text or ""
        normalised = normalise(raw)
        return cls(
            text=raw,
            normalised=normalised,
            words=WORD.findall(normalised),
            contact={
                str(k).casefold(): normalise(str(v))
                for k, v in contact.items()
                if isinstance(v, str | int | float | bool)
            },
            channel=channel,
            open_now=open_now,
            language=language,
        )


def _captures(match: re.Match[str]) -> dict[str, str]:
    found = {str(i + 1): g for i, g in enumerate(match.groups()) if g is not None}
    found.update({k: v for k, v in match.groupdict().items() if v is not None})
    found["0"] = match.group(0)
    return found


def _other_conditions(rule: CompiledRule, facts: Facts) -> dict[str, str] | None:
    """Everything but keywords: the captures if they hold, else None."""
    if rule.channel is not None and rule.channel != facts.channel:
        return None
    if rule.hours is not None and (rule.hours == "open") != facts.open_now:
        return None
    if rule.languages is not None and facts.language not in rule.languages:
        return None
    for name, wanted in rule.contact.items():
        if facts.contact.get(name) != wanted:
            return None
    captures: dict[str, str] = {}
    if rule.regex is not None:
        found = rule.regex.search(facts.text)
        if found is None:
            return None
        captures.update(_captures(found))
    for capture, pattern in rule.asks:
        if capture not in captures and (answer := pattern.search(facts.text)) is not None:
            captures[capture] = answer.group(0)
    return captures


def evaluate(
    rules: RuleSet, trigger: str, facts: Facts, *, taken_over: bool
) -> tuple[CompiledRule, dict[str, str]] | None:
    """The first rule (in order) of this trigger whose conditions hold."""
    group = rules.by_trigger.get(trigger)
    if group is None:
        return None
    words = facts.words
    hits: dict[int, dict[int, tuple[str, ...]]] = {}
    for start, word in enumerate(words):
        for position, number, keyword in group.index.get(word, ()):
            if len(keyword) == 1 or tuple(words[start : start + len(keyword)]) == keyword:
                hits.setdefault(position, {})[number] = keyword
    candidates = sorted({*hits, *group.unindexed}) if group.unindexed else sorted(hits)
    for position in candidates:
        rule = group.rules[position]
        if taken_over and not rule.after_handoff:
            continue
        found = hits.get(position)
        if rule.keywords and (not found or (rule.match_all and len(found) < len(rule.keywords))):
            continue
        captures = _other_conditions(rule, facts)
        if captures is not None:
            if found:
                captures["keyword"] = " ".join(next(iter(found.values())))
            return rule, captures
    return None


# ---------------------------------------------------------------- running a rule


@dataclass(frozen=True, slots=True)
class IntegrationSpec:
    name: str
    url: str
    method: str
    headers: dict[str, str]
    secret_header: str | None
    secret: str | None
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class Buttons:
    """A WhatsApp interactive reply-buttons message (rendered body, button titles)."""

    text: str
    titles: tuple[str, ...]
    # The reply ids' prefix; None: "automation:<rule id>" (a flow uses "flow:<id>:<step>").
    id_prefix: str | None = None

    def interactive(self, rule_id: int | None) -> dict[str, Any]:
        """The Cloud API's ``interactive`` object. A tap comes back as an inbound
        ``button_reply`` whose text is the button's title, so later rules match it."""
        prefix = self.id_prefix or f"automation:{rule_id or 0}"
        return {
            "type": "button",
            "body": {"text": self.text[:1024]},
            "action": {
                "buttons": [
                    {
                        "type": "reply",
                        "reply": {"id": f"{prefix}:{n}", "title": title},
                    }
                    for n, title in enumerate(self.titles, 1)
                ]
            },
        }


@dataclass(frozen=True, slots=True)
class ListMessage:
    """A WhatsApp interactive list message: rendered body, menu button, checked sections."""

    text: str
    button: str
    sections: tuple[dict[str, Any], ...]

    def interactive(self, rule_id: int | None = None) -> dict[str, Any]:
        """The Cloud API's ``interactive`` object; a choice comes back as an inbound
        ``list_reply`` with the row's id and title (the title is the message's text)."""
        return {
            "type": "list",
            "body": {"text": self.text[:1024]},
            "action": {"button": self.button, "sections": [dict(s) for s in self.sections]},
        }


Send = str | Buttons | ListMessage


@dataclass(slots=True)
class Effects:
    """What running a rule decided; applied by the worker in one transaction."""

    rule_id: int | None = None
    sends: list[Send] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    priority: str | None = None
    handoff_notes: list[str] = field(default_factory=list)
    resolve: bool = False
    # assign_team: (team id, the name the rule gave); the worker checks the team still exists.
    team: tuple[int, str] | None = None
    notes: list[str] = field(default_factory=list)  # private notes that hand nothing over
    # (step index to resume at, capture name, pattern, minutes) or None to clear
    pending: tuple[int, str, str, int] | None = None
    pending_data: dict[str, str] = field(default_factory=dict)
    clear_pending: bool = False
    # A start_flow action: the flow's id (the worker sends its first step).
    start_flow: int | None = None
    integration_ms: float | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def handed_off(self) -> bool:
        return bool(self.handoff_notes)


def _url_escape(value: str) -> str:
    return quote(value, safe="")


async def call_integration(
    http: HttpClient, spec: IntegrationSpec, context: dict[str, Any]
) -> tuple[str, Any]:
    """('ok', json) | ('not_found', None) | ('failed', reason). Never raises."""
    url = render(spec.url, context, escape=_url_escape)
    headers = {k: render(v, context) for k, v in spec.headers.items()}
    if spec.secret_header and spec.secret:
        headers[spec.secret_header] = spec.secret
    try:
        response = await asyncio.wait_for(
            http.request(spec.method, url, headers=headers, timeout_seconds=spec.timeout_seconds),
            timeout=spec.timeout_seconds + 0.5,
        )
    except (HttpError, TimeoutError) as exc:
        return "failed", f"{type(exc).__name__}: {exc}"[:300]
    if response.status_code == 404:
        return "not_found", None
    if response.status_code >= 400:
        return "failed", f"HTTP {response.status_code}"
    try:
        return "ok", response.json()
    except ValueError:
        return "failed", "the answer was not JSON"


async def run_rule(
    rule: CompiledRule,
    *,
    start: int,
    context: dict[str, Any],
    http: HttpClient,
    integrations: dict[str, IntegrationSpec],
    quick_replies: dict[str, str],
) -> Effects:
    """Run a rule's actions from ``start``; ``context`` holds contact, match, message..."""
    effects = Effects(rule_id=rule.id)
    match: dict[str, str] = context.setdefault("match", {})
    for index in range(start, len(rule.actions)):
        action = rule.actions[index]
        kind = action["type"]
        if kind == "reply":
            effects.sends.append(render(action["text"], context))
        elif kind == "quick_reply":
            text = quick_replies.get(action["shortcut"])
            if text is not None:
                effects.sends.append(render(text, context))
        elif kind == "ask":
            if not match.get(action["capture"]):
                effects.sends.append(render(action["text"], context))
                effects.pending = (
                    index,
                    action["capture"],
                    action["pattern"],
                    action.get("timeout_minutes", 30),
                )
                effects.pending_data = dict(match)
                effects.trace.append(f"asked for {action['capture']}")
                return effects
        elif kind == "integration":
            spec = integrations.get(action["integration"])
            started = time.perf_counter()
            if spec is None:
                outcome, result = "failed", "the integration no longer exists"
            else:
                outcome, result = await call_integration(http, spec, context)
            effects.integration_ms = (time.perf_counter() - started) * 1000
            effects.trace.append(f"integration {action['integration']}: {outcome}")
            note = action.get("note") or f"Automation rule “{rule.name}” needs a person"
            if outcome == "ok":
                context["result"] = result
                effects.sends.append(render(action["reply"], context))
            elif outcome == "not_found":
                effects.sends.append(
                    render(action.get("not_found_reply") or DEFAULT_NOT_FOUND, context)
                )
                effects.handoff_notes.append(f"{note}: nothing found ({_describe(match)}).")
                return effects
            else:
                effects.sends.append(
                    render(action.get("fallback_reply") or DEFAULT_FALLBACK, context)
                )
                effects.handoff_notes.append(
                    f"{note}: the {action['integration']} integration failed ({result})."
                )
                return effects
        elif kind == "add_label":
            effects.labels.append(action["label"])
        elif kind == "set_priority":
            effects.priority = action["priority"]
        elif kind == "handoff":
            effects.handoff_notes.append(
                render(
                    action.get("note") or f"Automation rule “{rule.name}” hands this over.", context
                )
            )
        elif kind == "resolve":
            effects.resolve = True
        elif kind == "assign_team":
            team_id = action.get("team_id")
            if isinstance(team_id, int):
                effects.team = (team_id, str(action.get("team", team_id)))
            else:
                effects.notes.append(
                    f"Automation rule “{rule.name}”: team {action.get('team')!r} is unknown;"
                    " the conversation was not given to a team."
                )
        elif kind == "buttons":
            effects.sends.append(Buttons(render(action["text"], context), tuple(action["buttons"])))
        elif kind == "list":
            effects.sends.append(list_of(action, context))
        elif kind == "start_flow":
            # The flow takes the conversation over: the rule's later actions do not run.
            if isinstance(action.get("flow_id"), int):
                effects.start_flow = action["flow_id"]
            else:
                effects.notes.append(
                    f"Automation rule “{rule.name}”: flow {action.get('flow')!r} is unknown."
                )
            return effects
    return effects


def list_of(message: dict[str, Any], context: dict[str, Any]) -> ListMessage:
    """A validated list (``rules.list_message``) with its body rendered."""
    return ListMessage(
        render(message["text"], context), message["button"], tuple(message["sections"])
    )


def _describe(match: dict[str, str]) -> str:
    shown = {k: v for k, v in match.items() if not k.isdigit() and k != "keyword"}
    return ", ".join(f"{k} {v}" for k, v in shown.items()) or "no details"
