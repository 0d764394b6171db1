"""What a link may be: slugs, reference codes, numbers, texts, and the wa.me URL's encoding."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wadesk.links.attribution import ref_candidates
from wadesk.links.rules import (
    RESERVED_SLUGS,
    URL_MAX,
    LinkInvalid,
    business_number,
    checked_wa_me_url,
    generate_ref,
    generate_slug,
    normalize_message,
    normalize_ref,
    normalize_ref_label,
    normalize_slug,
    prefilled_text,
    wa_me_url,
)

TEXTS = {
    "portuguese": "Olá! Quero saber da promoção de Natal: ação, coração, pão & café?",
    "hindi": "नमस्ते! मुझे क्रिसमस ऑफ़र के बारे में जानकारी चाहिए।",
    "bengali": "নমস্কার! আমি বড়দিনের অফার সম্পর্কে জানতে চাই।",
    "gujarati": "નમસ્તે! મને ક્રિસમસ ઑફર વિશે જાણવું છે.",
    "icelandic": "Halló! Ég vil vita meira um jólatilboðið: þú, æðar, ð, ö.",
    "thai": "สวัสดีครับ อยากทราบรายละเอียดโปรโมชั่นคริสต์มาส",
    "emoji": "Hi 👋🏽 family: 👨‍👩‍👧‍👦, flag 🇧🇷, keycap 1️⃣ #️⃣ — 🎄✨",
    "symbols": "a+b=c & d?e#f%20 100% /path?x=1&y=2 \"quoted\" 'single' <tag>",
    "lines": "Line one\nLine two\n\nLine four",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_prefilled_text_round_trips_through_the_wa_me_url(name):
    text = prefilled_text(
        normalize_message(TEXTS[name]), "XMAS24", include_ref=True, ref_label="ref"
    )
    url = wa_me_url("5511987654321", text)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "wa.me", "/5511987654321")
    # Only unreserved ASCII and percent escapes: nothing for a client to re-encode or cut.
    assert url.isascii() and " " not in url and "+" not in parts.query
    assert parse_qs(parts.query, strict_parsing=True) == {"text": [text]}
    assert unquote(parts.query.removeprefix("text="), errors="strict") == text
    assert text.endswith("(ref: XMAS24)")


@given(st.text(min_size=1, max_size=300))
def test_any_text_round_trips(text):
    url = wa_me_url("447700900123", text)
    parts = urlsplit(url)
    assert parts.netloc == "wa.me" and parts.path == "/447700900123"
    assert unquote(parts.query.removeprefix("text="), errors="strict") == text


def test_the_target_is_only_ever_wa_me_with_digits():
    for bad in ("evil.com", "1234/../../evil.com", "+5511987654321", "12345", "١٢٣٤٥٦٧٨"):
        with pytest.raises(LinkInvalid):
            wa_me_url(bad, "hi")
    assert wa_me_url("5511987654321", "") == "https://wa.me/5511987654321"


def test_the_encoded_length_is_checked():
    long_thai = "ส" * 600  # 600 characters, 9 per character once encoded
    with pytest.raises(LinkInvalid) as error:
        checked_wa_me_url("66812345678", long_thai)
    assert error.value.code == "message_too_long" and str(URL_MAX) in str(error.value)
    with pytest.raises(LinkInvalid):
        normalize_message("a" * 1001)
    assert checked_wa_me_url("66812345678", "ส" * 400).startswith("https://wa.me/66812345678?")


def test_control_characters_are_refused_but_joiners_kept():
    with pytest.raises(LinkInvalid):
        normalize_message("hello\x00world")
    assert normalize_message(" नमस्ते\r\nक्ष\u200d ") == "नमस्ते\nक्ष\u200d"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("promo-natal", "promo-natal"),
        ("Promo-Natal ", "promo-natal"),
        ("black-friday-2025", "black-friday-2025"),
        ("abc", "abc"),
    ],
)
def test_valid_slugs(given, expected):
    assert normalize_slug(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "ab",
        "a" * 65,
        "promo natal",
        "promo--natal",
        "-promo",
        "promo-",
        "promo_natal",
        "a/b",
        "../etc",
        "promoção",
        "%2e%2e",
        "promo.natal",
    ],
)
def test_invalid_slugs(bad):
    with pytest.raises(LinkInvalid) as error:
        normalize_slug(bad)
    assert error.value.code == "invalid_slug"


def test_accents_get_a_suggestion_and_reserved_words_are_refused():
    with pytest.raises(LinkInvalid) as error:
        normalize_slug("Promoção São João")
    assert "promocao-sao-joao" in str(error.value)
    for word in ("admin", "login", "api", "Webhooks", "static"):
        with pytest.raises(LinkInvalid) as error:
            normalize_slug(word)
        assert error.value.code == "reserved_slug"
    assert "login" in RESERVED_SLUGS


def test_generated_slugs_and_refs_are_valid_and_findable_in_text():
    for _ in range(200):
        slug = generate_slug()
        assert normalize_slug(slug) == slug
        ref = generate_ref()
        assert normalize_ref(ref) == ref
        assert any(c.isdigit() for c in ref) and any(c.isalpha() for c in ref)
        assert ref_candidates(f"Oi, vim pelo anúncio {ref}!") == [(ref, False)]


def test_ref_codes_and_labels():
    assert normalize_ref(" xmas24 ") == "XMAS24"
    for bad in ("X", "XMAS-24", "X" * 17, "ÄBC"):
        with pytest.raises(LinkInvalid):
            normalize_ref(bad)
    assert normalize_ref_label("código") == "código"
    with pytest.raises(LinkInvalid):
        normalize_ref_label("ref:")


@pytest.mark.parametrize(
    ("number", "region", "e164", "international"),
    [
        ("+55 11 98765-4321", None, "+5511987654321", "+55 11 98765-4321"),
        ("5511987654321", None, "+5511987654321", "+55 11 98765-4321"),
        ("(11) 98765-4321", "BR", "+5511987654321", "+55 11 98765-4321"),
        ("+91 98765 43210", None, "+919876543210", "+91 98765 43210"),
        ("+880 1712-345678", None, "+8801712345678", "+880 1712-345678"),
        ("+354 611 1234", None, "+3546111234", "+354 611 1234"),
        ("+66 81 234 5678", None, "+66812345678", "+66 81 234 5678"),
    ],
)
def test_business_numbers_are_validated_and_formatted(number, region, e164, international):
    parsed = business_number(number, region)
    assert (parsed.e164, parsed.international, parsed.digits) == (
        e164,
        international,
        e164[1:],
    )


@pytest.mark.parametrize("bad", ["12345", "+55 11 1234", "not a number", "+999 123456789"])
def test_invalid_numbers(bad):
    with pytest.raises(LinkInvalid) as error:
        business_number(bad)
    assert error.value.code == "invalid_phone"


def test_reference_codes_are_found_in_edited_text():
    assert ref_candidates("Olá! Quero a promo (ref: XMAS24)")[0] == ("XMAS24", True)
    assert ref_candidates("mudei tudo (REF:xmas24) obrigado")[0] == ("XMAS24", True)
    assert ref_candidates("(संदर्भ: XMAS24) नमस्ते")[0] == ("XMAS24", True)
    assert ref_candidates("quero ref xmas24 por favor")[0] == ("XMAS24", True)
    assert ref_candidates("ref#XMAS24 e REF-K7M2XP") == [("XMAS24", True), ("K7M2XP", True)]
    # A code that starts with "ref" is a code, not "ref" + the rest (generated ones can).
    assert ref_candidates("Oi, vim pelo anúncio REFVC8!") == [("REFVC8", False)]
    assert ref_candidates("promo REFUND10") == [("REFUND10", False)]
    assert ref_candidates("só o código XMAS24")[0] == ("XMAS24", False)
    # Plain words are not codes: a bare code has letters and digits, in capitals.
    assert ref_candidates("OLÁ QUERO SABER DO NATAL") == []
    assert ref_candidates("order 12345 please") == []
