"""Translations: every string of the web pages has a Brazilian Portuguese translation, and the
language follows the browser (Accept-Language) or the person's choice (cookie)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.helpers import create_inbox, create_user
from tests.web.client import sign_in
from wadesk.web import i18n

WEB = Path(i18n.__file__).parent
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}


def test_every_interface_string_has_a_portuguese_translation():
    extracted = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(WEB), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        key = message[0] if isinstance(message, tuple) else message
        extracted.add((context, key))
    assert len(extracted) > 100
    path = i18n.LOCALE_DIR / "pt_BR" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="pt_BR")
    translated = {
        (m.context, m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(extracted - translated, key=str)
    assert missing == [], "run pybabel extract/update (src/wadesk/locale/README.md)"


def test_language_negotiation():
    assert i18n.negotiate("pt-BR,pt;q=0.9,en;q=0.8") == "pt_BR"
    assert i18n.negotiate("pt-PT") == "pt_BR"
    assert i18n.negotiate("de-DE,en;q=0.5") == "en"
    assert i18n.negotiate("fr, pt;q=0.4") == "pt_BR"
    assert i18n.negotiate("en-US,pt-BR;q=0.9") == "en"
    assert i18n.negotiate("") == "en"
    assert i18n.negotiate("garbage;;q=x,,") == "en"
    assert i18n.negotiate("en", cookie="pt_BR") == "pt_BR"
    assert i18n.negotiate("pt-BR", cookie="xx") == "pt_BR"


async def test_the_inbox_speaks_the_browsers_language(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    agent = await sign_in(live, "ana@example.com")
    english = await agent.get("/inbox")
    assert '<html lang="en">' in english.text and "Search conversations" in english.text
    portuguese = await agent.get("/inbox", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    assert '<html lang="pt-BR">' in portuguese.text
    assert "Buscar conversas" in portuguese.text and "Sem responsável" in portuguese.text
    agent.cookies.set("wadesk_lang", "pt_BR")
    chosen = await agent.get("/inbox", headers={"Accept-Language": "en"})
    assert "Caixa de entrada" in chosen.text
    await agent.aclose()
