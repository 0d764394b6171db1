"""Text helpers of automation: normalising for keyword matching, and safe placeholder rendering.

Rendering is a tiny substitution, not a template language: ``{{ contact.first_name }}`` looks a
dotted path up in plain data, ``{{ contact.first_name | there }}`` gives a fallback. Values are
inserted once and never rendered again, so a customer's text cannot inject placeholders, call
code or read anything outside the context it was given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*(?:\|\s*([^}]*?)\s*)?\}\}")
MAX_VALUE_CHARS = 1000
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case- and accent-insensitive form: 'Où est ma COMMANDE' -> 'ou est ma commande'.

    NFKD splits letters from their accents, which are dropped; casefold handles ß and the like.
    Letters without a decomposition (ø, ł, Arabic, CJK) stay as they are."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", stripped.casefold()).strip()


def lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)[:MAX_VALUE_CHARS]


def render(
    template: str, context: Mapping[str, Any], escape: Callable[[str], str] | None = None
) -> str:
    """Fill ``{{ path }}`` placeholders from context; unknown ones become their fallback or ''."""

    def one(match: re.Match[str]) -> str:
        value = _as_text(lookup(context, match.group(1)))
        if value is None or value == "":
            value = match.group(2) or ""
        return escape(value) if escape else value

    return PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(template)]
