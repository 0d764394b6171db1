"""Keyword matching for routing rules, in any script.

Normalisation: Unicode NFKD, case folded, combining marks removed *after Latin letters only*
("Devolução" = "devolucao"), then NFC. Devanagari and Thai vowel signs are combining marks
too but carry meaning, so they are kept.

A keyword (or a phrase of several words) matches:

* in scripts that separate words with spaces (Latin, Devanagari, ...): as a sequence of whole
  words. A word is a run of letters, marks and digits, so "ref" does not match "refund" and a
  Hindi keyword never matches half a word (Python's ``\\b`` would split Hindi words at their
  vowel signs);
* in Thai (no spaces between words): as a substring that starts and ends on syllable edges —
  not inside a character cluster (never before a combining vowel or tone mark), not right
  after a leading vowel (เ แ โ ใ ไ belong to the consonant after them) and not right before a
  following vowel (ะ า ำ). So "คืนเงิน" matches "ขอคืนเงินได้ไหม", "เงิน" matches it too, but
  "งิน" (inside เงิน) does not. Without a dictionary a Thai keyword can still match a longer
  word that contains it at a syllable edge; choose keywords of whole words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

THAI = re.compile(r"[\u0E00-\u0E7F]")
THAI_LEADING = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44")  # เ แ โ ใ ไ
THAI_FOLLOWING = frozenset("\u0e30\u0e32\u0e33\u0e45")  # ะ า ำ ๅ


def _is_latin_base(char: str) -> bool:
    code = ord(char)
    return code < 0x0250 or 0x1E00 <= code <= 0x1EFF


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    out: list[str] = []
    base = ""
    for char in decomposed:
        if unicodedata.category(char) == "Mn" and base and _is_latin_base(base):
            continue
        out.append(char)
        if not unicodedata.category(char).startswith("M"):
            base = char
    return unicodedata.normalize("NFC", "".join(out))


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN" or char == "_"


def words(text: str) -> list[str]:
    """The words of normalised text (runs of letters, marks, digits)."""
    found: list[str] = []
    current: list[str] = []
    for char in text:
        if _is_word_char(char):
            current.append(char)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def _thai_edges_ok(text: str, start: int, end: int) -> bool:
    if start > 0:
        before = text[start - 1]
        if before in THAI_LEADING:
            return False
    if unicodedata.category(text[start])[0] == "M":
        return False
    if end < len(text):
        after = text[end]
        if unicodedata.category(after)[0] == "M" or after in THAI_FOLLOWING:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Keyword:
    original: str
    normalised: str
    tokens: tuple[str, ...]
    thai: bool

    @classmethod
    def of(cls, keyword: str) -> Keyword:
        norm = normalise(keyword.strip())
        return cls(keyword, norm, tuple(words(norm)), bool(THAI.search(norm)))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message's text, normalised once for every rule."""

    text: str
    tokens: tuple[str, ...]

    @classmethod
    def of(cls, text: str | None) -> Prepared:
        norm = normalise(text or "")
        return cls(norm, tuple(words(norm)))


def keyword_matches(keyword: Keyword, prepared: Prepared) -> bool:
    if not keyword.normalised:
        return False
    if keyword.thai:
        needle = keyword.normalised
        start = prepared.text.find(needle)
        while start != -1:
            if _thai_edges_ok(prepared.text, start, start + len(needle)):
                return True
            start = prepared.text.find(needle, start + 1)
        return False
    size = len(keyword.tokens)
    if size == 0:
        return False
    tokens = prepared.tokens
    return any(tokens[i : i + size] == keyword.tokens for i in range(len(tokens) - size + 1))


def any_keyword(keywords: list[str], text: str | None) -> str | None:
    """The first keyword that matches ``text``, or None."""
    prepared = Prepared.of(text)
    for raw in keywords:
        if keyword_matches(Keyword.of(raw), prepared):
            return raw
    return None
