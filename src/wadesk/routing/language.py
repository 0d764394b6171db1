"""Detected language of a customer's text (lingua), restricted to the configured languages.

Building a detector takes time and memory: one is built per set of languages and kept.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

_lock = threading.Lock()
MIN_CHARS = 3


def supported(code: str) -> bool:
    from lingua import IsoCode639_1, Language

    try:
        Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
    except (AttributeError, ValueError):
        return False
    return True


@lru_cache(maxsize=8)
def _detector(codes: tuple[str, ...]) -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    with _lock:
        return LanguageDetectorBuilder.from_languages(*languages).build()


def detect(text: str | None, codes: list[str]) -> str | None:
    """The ISO 639-1 code of the text's language among ``codes`` (at least two), or None."""
    valid = tuple(sorted({c.lower() for c in codes if supported(c)}))
    if not text or len(text.strip()) < MIN_CHARS or not valid:
        return None
    if len(valid) == 1:
        # lingua needs two candidates; a second, unlikely one keeps the answer meaningful.
        valid = (*valid, "la" if valid[0] != "la" else "eo")
    language = _detector(valid).detect_language_of(text)
    if language is None:
        return None
    code = str(language.iso_code_639_1.name).lower()
    return code if code in codes else None


def warm(codes: list[str]) -> None:
    """Build the detector ahead of the first message (call in a thread)."""
    detect("warm up the detector", codes)
