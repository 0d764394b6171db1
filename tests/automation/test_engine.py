"""The rules engine without I/O: normalising, keywords, regex captures, conditions, rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from wadesk.automation.engine import Facts, compile_rules, evaluate
from wadesk.automation.rules import RuleInvalid, validate_actions, validate_conditions
from wadesk.automation.text import normalise, render


@dataclass
class Row:
    id: int
    name: str
    conditions: dict[str, Any]
    actions: list[dict[str, Any]] = field(default_factory=lambda: [{"type": "reply", "text": "x"}])
    trigger: str = "message"
    position: int = 0
    enabled: bool = True
    after_handoff: bool = False
    inbox_id: int = 1


def facts(text: str, **contact: Any) -> Facts:
    return Facts.of(text, contact, "whatsapp", True)


def test_normalise_folds_case_accents_and_spaces():
    assert normalise("  Où   est ma COMMANDE ") == "ou est ma commande"
    assert normalise("STRASSE Straße") == "strasse strasse"
    assert normalise("¿Dónde está mi PEDIDO?") == "¿donde esta mi pedido?"


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("What is my order status?", True),
        ("ORDER   STATUS please", True),
        ("reorder status", False),  # word boundary: not inside another word
        ("order statuses", False),
        ("Statut de ma commande", True),
        ("dónde está mi pedido", True),
        ("wo ist meine Bestellung", True),
        ("hello there", False),
    ],
)
def test_keywords_match_whole_words_in_several_languages(text, hit):
    keywords = ["order status", "commande", "donde esta mi pedido", "bestellung"]
    rules = compile_rules([Row(1, "orders", {"keywords": keywords})])
    assert (evaluate(rules, "message", facts(text), taken_over=False) is not None) is hit


def test_first_matching_rule_wins_and_regex_captures_are_named_and_numbered():
    rules = compile_rules(
        [
            Row(2, "refund", {"keywords": ["refund"]}, position=20),
            Row(1, "order", {"regex": r"order\s*#?(?P<order>\d{4,})"}, position=10),
        ]
    )
    rule, captures = evaluate(rules, "message", facts("Refund for ORDER #12345"), taken_over=False)
    assert rule.id == 1
    assert captures["order"] == "12345" and captures["1"] == "12345"


def test_all_keywords_contact_attributes_channel_and_hours():
    rules = compile_rules(
        [
            Row(
                1,
                "vip",
                {"keywords": ["refund", "late"], "match": "all", "contact": {"Tier": "Gold"}},
            ),
            Row(2, "night", {"hours": "closed"}),
            Row(3, "email", {"channel": "email"}),
        ]
    )
    assert evaluate(rules, "message", facts("refund please"), taken_over=False) is None
    chosen = evaluate(rules, "message", facts("late, refund!", tier="gold"), taken_over=False)
    assert chosen[0].id == 1
    assert evaluate(rules, "message", facts("late refund", tier="silver"), taken_over=False) is None
    closed = Facts.of("anything", {}, "whatsapp", False)
    assert evaluate(rules, "message", closed, taken_over=False)[0].id == 2


def test_taken_over_conversations_only_get_rules_that_say_so():
    rules = compile_rules(
        [
            Row(1, "quiet", {"keywords": ["hours"]}),
            Row(2, "always", {"keywords": ["hours"]}, after_handoff=True, position=5),
        ]
    )
    assert evaluate(rules, "message", facts("opening hours?"), taken_over=True)[0].id == 2
    disabled = compile_rules([Row(1, "off", {"keywords": ["hours"]}, enabled=False)])
    assert evaluate(disabled, "message", facts("hours"), taken_over=False) is None


def test_rendering_is_plain_substitution_and_cannot_be_injected():
    context = {"contact": {"first_name": "{{secret}}", "tier": None}, "secret": "s3cr3t"}
    assert render("Hi {{contact.first_name}}", context) == "Hi {{secret}}"
    assert render("Hi {{ contact.tier | friend }}!", context) == "Hi friend!"
    assert render("{{contact.__class__}}{{missing.path}}", context) == ""
    assert render("{{ contact }}", context) == ""  # objects are never dumped


def test_validation_explains_what_is_wrong():
    with pytest.raises(RuleInvalid, match="regex"):
        validate_conditions({"regex": "order (\\d+"})
    with pytest.raises(RuleInvalid, match="Unknown condition"):
        validate_conditions({"keyword": ["x"]})
    with pytest.raises(RuleInvalid, match="type must be one of"):
        validate_actions([{"type": "explode"}])
    with pytest.raises(RuleInvalid, match="No integration named"):
        validate_actions([{"type": "integration", "integration": "crm", "reply": "x"}], set())
    with pytest.raises(RuleInvalid, match="priority"):
        validate_actions([{"type": "set_priority", "priority": "extreme"}])
    assert validate_conditions({"keywords": [" Order "], "match": "any"}) == {"keywords": ["Order"]}
