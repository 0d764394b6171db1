"""Keyword, regex, language and attribute conditions, in Portuguese, English, Hindi and Thai."""

from __future__ import annotations

import pytest

from wadesk.routing.language import detect
from wadesk.routing.rules import Context, RuleView, evaluate, matches, priority_tags
from wadesk.routing.text import any_keyword, normalise


def kw(keywords, text):
    return matches({"keywords": keywords}, Context(text, 1, {}))


@pytest.mark.parametrize(
    ("keywords", "text", "expected"),
    [
        # Portuguese: case and accents do not matter, whole words do.
        (["devolução"], "Olá, quero fazer uma DEVOLUCAO do pedido", True),
        (["devolucao"], "Quero a devolução!", True),
        (["troca"], "Posso trocar o tamanho?", False),
        (["nota fiscal"], "Preciso da Nota   Fiscal, por favor", True),
        # English: word boundaries.
        (["refund"], "I want a refund.", True),
        (["refund"], "Was it refunded already?", False),
        (["order status"], "what's my ORDER-status?", True),
        # Hindi (Devanagari): vowel signs belong to the word; no match inside a word.
        (["रिफंड"], "मुझे रिफंड चाहिए", True),
        (["कित"], "यह किताब ख़राब है", False),
        (["किताब"], "यह किताब ख़राब है", True),
        # Thai (no spaces): syllable-edge substring.
        (["คืนเงิน"], "สวัสดีค่ะ ขอคืนเงินได้ไหม", True),
        (["เงิน"], "ขอคืนเงินได้ไหม", True),
        (["งิน"], "ขอคืนเงินได้ไหม", False),  # inside เงิน: the leading vowel is left out
        (["คืนเง"], "ขอคืนเงินได้ไหม", False),  # would cut the cluster เงิ (vowel sign after)
        (["ได้ไหม"], "ขอคืนเงินได้ไหม", True),
        (["สวัสดี"], "สวัสดีครับ", True),
        (["ยกเลิก"], "ต้องการยกเลิกคำสั่งซื้อ", True),
    ],
)
def test_keywords(keywords, text, expected):
    assert kw(keywords, text) is expected


def test_normalise_keeps_non_latin_marks():
    assert normalise("Ação") == "acao"
    assert normalise("किताब") == "किताब"
    assert normalise("เงิน") == "เงิน"
    assert any_keyword(["x", "Café"], "um cafe por favor") == "Café"


def test_regex_and_attributes():
    ctx = Context("Pedido #12345 atrasado", 1, {"plan": "Gold", "spend": "1200", "tags": ["b2b"]})
    assert matches({"regex": r"#\d{5}\b"}, ctx)
    assert not matches({"regex": r"#\d{6}"}, ctx)
    assert matches({"attributes": [{"name": "plan", "op": "eq", "value": "gold"}]}, ctx)
    assert matches({"attributes": [{"name": "spend", "op": "gt", "value": 1000}]}, ctx)
    assert not matches({"attributes": [{"name": "spend", "op": "lt", "value": 1000}]}, ctx)
    assert matches({"attributes": [{"name": "tags", "op": "contains", "value": "b2b"}]}, ctx)
    assert matches({"attributes": [{"name": "missing", "op": "exists", "value": False}]}, ctx)
    assert not matches({"inbox_ids": [2]}, ctx)
    assert matches({}, ctx)


def test_business_hours_condition_needs_known_hours():
    closed = Context("hi", 1, {}, hours_open=lambda: False)
    unknown = Context("hi", 1, {})
    assert matches({"business_hours": "closed"}, closed)
    assert not matches({"business_hours": "open"}, closed)
    assert not matches({"business_hours": "closed"}, unknown)


def test_language_detection_is_restricted_to_configured_languages():
    codes = ["en", "pt", "hi", "th"]
    assert detect("Olá, quero devolver o meu pedido", codes) == "pt"
    assert detect("Hello, I would like to return my order", codes) == "en"
    assert detect("मुझे अपना ऑर्डर वापस करना है", codes) == "hi"
    assert detect("สวัสดีค่ะ ขอคืนเงินได้ไหม", codes) == "th"
    assert detect("Hola, quiero devolver mi pedido", ["en", "hi", "th"]) != "es"
    assert detect("ok", codes) is None  # too short to say
    assert detect("Hello there", []) is None


def test_rules_in_order_first_team_wins_labels_add_up_stop_ends():
    rules = [
        RuleView(
            1, {"keywords": ["refund", "devolução"]}, {"team_id": 7, "labels": ["refund"]}, False
        ),
        RuleView(
            2, {"languages": ["pt"]}, {"team_id": 8, "labels": ["pt"], "priority": "high"}, True
        ),
        RuleView(3, {}, {"labels": ["never"]}, False),
    ]
    out = evaluate(rules, Context("quero uma devolução", 1, {}, language="pt"))
    assert (out.team_id, out.priority, out.labels, out.matched) == (
        7,
        "high",
        ["refund", "pt"],
        [1, 2],
    )
    out = evaluate(rules, Context("hello", 1, {}, language="en"))
    assert out.matched == [3] and out.team_id is None


def test_priority_tags():
    kw_ = {"returns_threshold": 2, "spend_threshold": 1000.0, "frequent_threshold": 3}
    assert priority_tags({"returns_90d": 2}, 1, **kw_) == ["priority"]
    assert priority_tags({"returns_90d": "1"}, 1, **kw_) == []
    assert priority_tags({"monthly_spend": 1000}, 1, **kw_) == []  # above, not equal
    assert priority_tags({"monthly_spend": "1,000.01"}, 1, **kw_) == ["vip"]
    assert priority_tags({"monthly_spend": True}, 3, **kw_) == ["frequent"]
