"""Routing rules and priority rules: pure evaluation (no database).

Conditions (all present ones must hold; an empty rule matches every new conversation)::

    {"keywords": ["refund", "devolução", "रिफंड", "คืนเงิน"],   # any of them (routing/text.py)
     "regex": "order\\s*#?\\d{5}",                               # Python syntax, case-insensitive
     "languages": ["th"],                                        # detected language
     "inbox_ids": [1, 2],
     "business_hours": "open" | "closed",                        # the inbox's automation hours
     "attributes": [{"name": "plan", "op": "eq", "value": "gold"}]}

Actions: ``{"team_id": 3, "priority": "high", "labels": ["refund"]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from wadesk.routing.text import Keyword, Prepared, keyword_matches

ATTRIBUTE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists")
# Contact attributes the built-in priority rules read (docs/routing.md).
RETURNS_ATTRIBUTE = "returns_90d"
SPEND_ATTRIBUTE = "monthly_spend"
TAG_PRIORITY = {"priority": "urgent", "vip": "high", "frequent": "medium"}
PRIORITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3, "urgent": 4}


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def priority_tags(
    attributes: dict[str, Any],
    conversations_30d: int,
    *,
    returns_threshold: int,
    spend_threshold: float,
    frequent_threshold: int,
) -> list[str]:
    """The built-in priority rules: 2+ returns in 90 days → ``priority``; monthly spend above
    the threshold → ``vip``; 3+ conversations in 30 days (this one included) → ``frequent``."""
    tags = []
    returns = number(attributes.get(RETURNS_ATTRIBUTE))
    if returns is not None and returns_threshold > 0 and returns >= returns_threshold:
        tags.append("priority")
    spend = number(attributes.get(SPEND_ATTRIBUTE))
    if spend is not None and spend > spend_threshold:
        tags.append("vip")
    if frequent_threshold > 0 and conversations_30d >= frequent_threshold:
        tags.append("frequent")
    return tags


def higher_priority(*priorities: str | None) -> str:
    best = "none"
    for p in priorities:
        if p and PRIORITY_RANK.get(p, 0) > PRIORITY_RANK[best]:
            best = p
    return best


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@lru_cache(maxsize=4096)
def _keyword(raw: str) -> Keyword:
    return Keyword.of(raw)


def _attribute_holds(attributes: dict[str, Any], cond: dict[str, Any]) -> bool:
    name, op, expected = str(cond.get("name", "")), str(cond.get("op", "eq")), cond.get("value")
    present = name in attributes and attributes[name] is not None
    value = attributes.get(name)
    if op == "exists":
        return present == (expected is not False)
    if not present:
        return op == "ne"
    if op == "contains":
        if isinstance(value, list):
            return expected in value
        return str(expected).casefold() in str(value).casefold()
    if op in ("gt", "gte", "lt", "lte"):
        left, right = number(value), number(expected)
        if left is None or right is None:
            return False
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[op]
    same = str(value).casefold() == str(expected).casefold()
    return same if op == "eq" else not same


@dataclass
class Context:
    """What the rules of one new conversation look at."""

    text: str | None
    inbox_id: int
    attributes: dict[str, Any]
    language: str | None = None
    hours_open: Callable[[], bool | None] = lambda: None
    _prepared: Prepared | None = field(default=None, repr=False)

    @property
    def prepared(self) -> Prepared:
        if self._prepared is None:
            self._prepared = Prepared.of(self.text)
        return self._prepared


def matches(conditions: dict[str, Any], ctx: Context) -> bool:
    keywords = conditions.get("keywords") or []
    if keywords and not any(keyword_matches(_keyword(str(k)), ctx.prepared) for k in keywords):
        return False
    pattern = conditions.get("regex")
    if pattern and not compiled(str(pattern)).search(ctx.text or ""):
        return False
    languages = conditions.get("languages") or []
    if languages and ctx.language not in languages:
        return False
    inbox_ids = conditions.get("inbox_ids") or []
    if inbox_ids and ctx.inbox_id not in inbox_ids:
        return False
    hours = conditions.get("business_hours")
    if hours in ("open", "closed"):
        is_open = ctx.hours_open()
        if is_open is None or is_open != (hours == "open"):
            return False
    return all(_attribute_holds(ctx.attributes, c) for c in conditions.get("attributes") or [])


@dataclass
class Outcome:
    team_id: int | None = None
    priority: str | None = None
    labels: list[str] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleView:
    id: int
    conditions: dict[str, Any]
    actions: dict[str, Any]
    stop: bool


def evaluate(rules: list[RuleView], ctx: Context) -> Outcome:
    """Every matching rule, in order: labels add up; the first team and the highest priority
    win; a rule with ``stop`` ends the evaluation."""
    out = Outcome()
    for rule in rules:
        if not matches(rule.conditions, ctx):
            continue
        out.matched.append(rule.id)
        team = rule.actions.get("team_id")
        if out.team_id is None and isinstance(team, int):
            out.team_id = team
        priority = rule.actions.get("priority")
        if isinstance(priority, str):
            out.priority = higher_priority(out.priority, priority)
        for label in rule.actions.get("labels") or []:
            if label not in out.labels:
                out.labels.append(str(label))
        if rule.stop:
            break
    return out


def uses_language(rules: list[RuleView]) -> bool:
    return any(r.conditions.get("languages") for r in rules)


def uses_hours(rules: list[RuleView]) -> bool:
    return any(r.conditions.get("business_hours") in ("open", "closed") for r in rules)
