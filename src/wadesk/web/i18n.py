"""Translations for the web pages: gettext via Jinja2's i18n extension, catalogs read by babel.

The catalogs are the ``.po`` files in ``src/wadesk/locale/<lang>/LC_MESSAGES/messages.po``, read at
start-up with babel (no compile step, no ``.mo`` files). The language of a request is chosen by
:class:`LocaleMiddleware`: the ``wadesk_lang`` cookie when the person picked one, else the
browser's ``Accept-Language``, else English. Templates call ``_("...")``, ``ngettext(...)``;
Python code calls :func:`gettext` (the current request's language).

Extract new strings with ``pybabel extract -F babel.cfg -o messages.pot src/wadesk`` then
``pybabel update`` (see src/wadesk/locale/README.md).
"""

from __future__ import annotations

import gettext as stdlib_gettext
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po
from jinja2 import Environment
from starlette.types import ASGIApp, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DEFAULT = "en"
LANGUAGES = {"en": "English", "pt_BR": "Português (Brasil)"}
COOKIE = "wadesk_lang"

_current: ContextVar[str] = ContextVar("wadesk_language", default=DEFAULT)


class _Catalog(stdlib_gettext.NullTranslations):
    def __init__(self, messages: dict[str, str], plurals: dict[str, list[str]], plural: Any):
        super().__init__()
        self._messages = messages
        self._plurals = plurals
        self._plural = plural

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        forms = self._plurals.get(msgid1)
        if forms:
            index = int(self._plural(n))
            if 0 <= index < len(forms) and forms[index]:
                return forms[index]
        return msgid1 if n == 1 else msgid2


@cache
def catalog(language: str) -> stdlib_gettext.NullTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not path.exists():
        return stdlib_gettext.NullTranslations()
    with path.open("rb") as handle:
        po = read_po(handle, locale=language)
    messages: dict[str, str] = {}
    plurals: dict[str, list[str]] = {}
    for entry in po:
        if not entry.id or entry.fuzzy:
            continue
        if entry.context and isinstance(entry.id, str) and entry.string:
            messages[f"{entry.context}\x04{entry.id}"] = str(entry.string)
        elif isinstance(entry.id, tuple):
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            plurals[entry.id[0]] = [str(s) for s in strings]
        elif entry.string:
            messages[str(entry.id)] = str(entry.string)
    return _Catalog(messages, plurals, po.plural_expr and _plural_function(po.plural_expr))


def _plural_function(expression: str) -> Any:
    # babel gives the C expression of the catalog's Plural-Forms; gettext compiles it safely.
    return stdlib_gettext.c2py(expression)


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return catalog(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalog(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """A message whose translation depends on where it is shown (e.g. a tab vs. a state)."""
    found = catalog(_current.get()).gettext(f"{context}\x04{message}")
    return message if found == f"{context}\x04{message}" else found


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return ngettext(singular, plural, n)


def html_lang(language: str | None = None) -> str:
    return (language or _current.get()).replace("_", "-")


def negotiate(accept_language: str | None, cookie: str | None = None) -> str:
    if cookie in LANGUAGES:
        return str(cookie)
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            weighted.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(weighted):
        if tag == "*":
            break
        try:
            locale = Locale.parse(tag, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language == "pt":
            return "pt_BR"
        if locale.language == "en":
            return "en"
    return DEFAULT


class LocaleMiddleware:
    """Pure ASGI: picks the request's language before any route or template runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        accept = headers.get(b"accept-language", b"").decode("latin-1")
        cookie = None
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                cookie = value
        token = _current.set(negotiate(accept, cookie))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def install_jinja(env: Environment) -> None:
    """Give an environment ``_``/``gettext``/``ngettext`` following the request's language."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext
    )
    env.globals["html_lang"] = html_lang
    env.globals["current_language"] = current_language
    env.globals["languages"] = LANGUAGES
