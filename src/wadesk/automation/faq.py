"""FAQ bot matching: which question of the knowledge base a customer's message asks, and how
sure we are (0-100). Pure and in memory; the worker compiles an inbox's entries once and
recompiles them when an ``automation.faq_changed`` event says an entry changed.

Scoring: both sides go through the automation normaliser (case- and accent-insensitive, so
"Horário" = "horario") with punctuation removed; an entry's score is its best phrasing's
(the question or an alternative), from :func:`score`:

- ``token_sort_ratio`` on the whole texts: typos ("oppening hours") and reordered words
  ("hours opening, what are your") both score high, and a short message never scores high
  against a long question ("hi" vs "shipping cost": 27).
- Only when the message is *longer* than the phrasing (a question wrapped in other words: "hi!
  what are your opening hours? thanks"): also ``token_set_ratio`` (every word of the phrasing
  is in the message) and ``partial_ratio`` (the phrasing appears nearly as is), scaled down
  the longer the message is compared to the phrasing (by 0.95 up to 1.5 times as long,
  0.9 up to 3 times, 0.8 beyond).

Why not rapidfuzz's ``WRatio`` or ``token_set_ratio`` alone: both are symmetric, so a
one-word message found *inside* a phrasing scores 90-100 ("hi" in "sHIpping cost", "open" in
"when are you open") and the bot would answer "ok" and "hi" with an FAQ. Evidence must come
from the customer's message containing the question, not the other way round.

Punctuation and symbols (Unicode categories P* and S*) are removed, but not combining marks:
Devanagari vowel signs are marks, and dropping them would merge different Hindi words.

Semantic matching (optional, ``automation/semantic.py``): when the ``semantic`` extra is
installed the worker compiles the index with an embedder; every phrasing then also gets a
semantic score (cosine similarity of sentence embeddings, scaled to 0-100) and a phrasing's
score is the higher of the two, so "when do you open tomorrow" finds "What are your opening
hours?" though few words are shared. ``FaqMatch.matcher`` says which scorer gave the score
(a tie goes to ``fuzzy``). Without an embedder everything here is rapidfuzz only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from wadesk.automation.semantic import Embedder
from wadesk.automation.text import normalise

# How far below the threshold a best match still says "probably this, ask a person".
NEAR_MISS = 20
QUESTION_MARKS = ("?", "\u00bf", "\u061f", "\uff1f")  # ? ¿ Arabic ? full-width ?
# A message starting with one of these is a question even without a question mark.
_STARTS = (
    # English
    "what where when why how who which whom whose can could do does did is are am will "
    "would should may shall have has any "
    # Portuguese / Spanish (normalised: accents removed)
    "que onde quando porque qual quais quanto quanta quantos quem como posso pode "
    "podem voces voce tem existe cual cuales donde cuando cuanto puedo hay "
    # French / German
    "quoi quel quelle comment pourquoi was wo wann warum wie wer welche kann"
)
QUESTION_STARTS = frozenset(_STARTS.split())
# Hindi question words are usually mid-sentence ("दुकान कब खुलती है"): looked for anywhere.
QUESTION_WORDS = frozenset(
    normalise(w) for w in ("क्या", "कब", "कहाँ", "कहां", "कैसे", "क्यों", "कौन", "कितना", "कितने", "कितनी")
)


def clean(text: str) -> str:
    """Normalised and without punctuation: the form both sides are compared in."""
    normalised = normalise(text)
    kept = (
        " " if unicodedata.category(c)[0] in "PS" else c
        for c in normalised
        if c != "\u200d" and c != "\u200c"  # zero-width (non-)joiners of Indic scripts
    )
    return " ".join("".join(kept).split())


def looks_like_question(text: str) -> bool:
    if any(mark in text for mark in QUESTION_MARKS):
        return True
    words = clean(text).split()
    if not words:
        return False
    return words[0] in QUESTION_STARTS or any(w in QUESTION_WORDS for w in words)


@dataclass(frozen=True, slots=True)
class CompiledFaq:
    id: int
    inbox_id: int | None
    question: str
    answer: str
    language: str | None


@dataclass(slots=True)
class FaqIndex:
    """Every phrasing of every entry of an inbox (its own and the shared ones), cleaned."""

    entries: list[CompiledFaq] = field(default_factory=list)
    phrasings: list[str] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # phrasing -> index in entries
    embedder: Embedder | None = None  # the semantic matcher, when installed
    vectors: Any = None  # the phrasings' embeddings (numpy rows), with an embedder

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: CompiledFaq
    score: float  # 0-100
    phrasing: str  # the cleaned phrasing that scored best
    matcher: str = "fuzzy"  # which scorer gave ``score``: fuzzy | semantic


def compile_faq(rows: Iterable[Any], embedder: Embedder | None = None) -> FaqIndex:
    """Enabled entries, an inbox's own before the shared ones (a tie goes to the inbox's);
    with an embedder, each phrasing's embedding too (of its text as written: the model
    reads case and accents)."""
    index = FaqIndex(embedder=embedder)
    written: list[str] = []
    ordered = sorted(rows, key=lambda r: (r.inbox_id is None, r.id))
    for row in ordered:
        if not row.enabled:
            continue
        entry = CompiledFaq(row.id, row.inbox_id, row.question, row.answer, row.language)
        position = len(index.entries)
        index.entries.append(entry)
        seen: set[str] = set()
        for phrasing in [row.question, *(row.alternatives or [])]:
            cleaned = clean(str(phrasing))
            if cleaned and cleaned not in seen:
                seen.add(cleaned)
                index.phrasings.append(cleaned)
                index.owners.append(position)
                written.append(str(phrasing).strip())
    if embedder is not None:
        index.vectors = embedder.phrasings(written)
    return index


def score(query: str, phrasing: str) -> float:
    """How well a cleaned message asks a cleaned phrasing, 0-100 (see the module docstring)."""
    best = fuzz.token_sort_ratio(query, phrasing)
    if len(query) > len(phrasing):
        longer = len(query) / len(phrasing)
        scale = 0.95 if longer <= 1.5 else 0.9 if longer <= 3 else 0.8
        wrapped = max(fuzz.token_set_ratio(query, phrasing), fuzz.partial_ratio(phrasing, query))
        best = max(best, scale * wrapped)
    return float(best)


def best_matches(index: FaqIndex, text: str, limit: int = 3) -> list[FaqMatch]:
    """The ``limit`` best entries for a text, best first (one result per entry; a tie goes
    to the entry compiled first: the inbox's own before the shared ones)."""
    query = clean(text)
    if not query or not index.phrasings:
        return []
    semantic = (
        index.embedder.scores(index.vectors, text.strip())
        if index.embedder is not None
        else [0.0] * len(index.phrasings)
    )
    best: dict[int, tuple[float, str, str]] = {}
    for phrasing, owner, meaning in zip(index.phrasings, index.owners, semantic, strict=True):
        fuzzy = score(query, phrasing)
        value, matcher = (meaning, "semantic") if meaning > fuzzy else (fuzzy, "fuzzy")
        if owner not in best or value > best[owner][0]:
            best[owner] = (value, phrasing, matcher)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    return [
        FaqMatch(index.entries[owner], round(value, 1), phrasing, matcher)
        for owner, (value, phrasing, matcher) in ranked
    ]


@dataclass(frozen=True, slots=True)
class FaqDecision:
    """``answer``: reply with the entry; ``handoff``: a person should look (a near miss or
    a question we cannot place); ``none``: not for the FAQ bot (small talk, "ok")."""

    kind: str
    match: FaqMatch | None


def decide(index: FaqIndex, text: str, threshold: int) -> FaqDecision:
    matches = best_matches(index, text, limit=1)
    best = matches[0] if matches else None
    if best is not None and best.score >= threshold:
        return FaqDecision("answer", best)
    if best is not None and best.score >= threshold - NEAR_MISS:
        return FaqDecision("handoff", best)
    if looks_like_question(text) and len(index):
        return FaqDecision("handoff", best)
    return FaqDecision("none", best)
