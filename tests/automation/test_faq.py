"""The FAQ bot: matching (typos, word order, accents, Portuguese, English, Hindi), answers and
hand-offs through the real webhook and the simulator, counters and the hit rate per day,
the API (validation, audit, access, review due) and the admin pages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.automation.conftest import (
    conversation_messages,
    customer_says,
    received,
    settle_jobs,
    sim_inbox,
    wait_received,
)
from tests.helpers import auth, create_user
from tests.web.client import csrf_of, sign_in
from wadesk.audit.actions import Actor
from wadesk.audit.models import AuditEvent
from wadesk.automation import semantic
from wadesk.automation.actions import do_create_faq, do_create_rule, do_set_inbox_automation
from wadesk.automation.faq import (
    best_matches,
    clean,
    compile_faq,
    decide,
    looks_like_question,
    score,
)
from wadesk.automation.models import AutomationJob, FaqDay, FaqEntry, InboxAutomation
from wadesk.conversations.actions import do_update_conversation
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow

ADMIN = Actor.system("tests")
HOURS = {
    "question": "What are your opening hours?",
    "alternatives": ["When are you open?", "Qual é o horário de funcionamento?"],
    "answer": "Hi {{contact.first_name|there}}, we are open 9:00 to 18:00, Monday to Friday.",
}
DELIVERY = {
    "question": "How much is delivery?",
    "alternatives": ["Quanto custa a entrega?", "shipping cost"],
    "answer": "Delivery costs 5 € and is free from 50 €.",
}
RETURNS = {
    "question": "Do you accept returns?",
    "alternatives": ["Can I return an item", "Como faço para devolver um produto?"],
    "answer": "Yes, within 30 days.",
}
SHOP_HI = {"question": "दुकान कब खुलती है?", "alternatives": ["आपकी दुकान कितने बजे खुलती है"]}
HOME_HI = {"question": "क्या आप होम डिलीवरी करते हैं?", "alternatives": []}


def entries() -> list[Any]:
    rows = [HOURS, DELIVERY, RETURNS, SHOP_HI, HOME_HI]
    return [
        SimpleNamespace(
            id=number,
            inbox_id=None,
            question=row["question"],
            alternatives=row["alternatives"],
            answer=row.get("answer", "…"),
            language=None,
            enabled=True,
        )
        for number, row in enumerate(rows, start=1)
    ]


def top(text: str) -> tuple[int, float]:
    found = best_matches(compile_faq(entries()), text, limit=1)
    return found[0].entry.id, found[0].score


# ------------------------------------------------------------------ matching (pure)


def test_typos_word_order_accents_and_extra_words_still_match():
    assert top("what are ur oppening hours")[0] == 1 and top("what are ur oppening hours")[1] >= 80
    assert top("hours opening what are your") == (1, 100.0)
    assert top("QUAL É O HORÁRIO DE FUNCIONAMENTO") == (1, 100.0)
    assert top("qual o horario de funcionamento")[1] >= 90  # accents and a word missing
    assert top("hi! what are your opening hours? thanks") == (1, 95.0)
    assert top("can i return an item i bought")[0] == 3


def test_portuguese_english_and_hindi():
    assert top("quanto custa a entrega pra SP?")[0] == 2
    assert top("how much does delivery cost")[0] == 2
    assert top("Como faço pra devolver um produto")[0] == 3
    entry, value = top("आपकी दुकान कितने बजे खुलती हैं?")
    assert entry == 4 and value >= 90
    entry, value = top("क्या आप डिलीवरी करते हैं")
    assert entry == 5 and value >= 85


def test_hindi_vowel_signs_are_kept():
    # Devanagari vowel signs are combining marks: dropping them would merge words.
    assert clean("खुलती") != clean("खलत")
    assert clean("कब खुलती है?") == "कब खुलती है"


def test_short_messages_found_inside_a_question_do_not_match():
    index = compile_faq(entries())
    for text in ("hi", "ok", "open", "thanks", "yes", "hello there"):
        assert best_matches(index, text, limit=1)[0].score < 60, text
        assert decide(index, text, 80).kind == "none", text
    # The customer's message holding the question is evidence; the reverse is not.
    assert score(clean("what is the shipping cost to rio"), "shipping cost") >= 80
    assert score("shipping", clean("what is the shipping cost to rio")) < 50


def test_question_detection():
    assert looks_like_question("can you help me")
    assert looks_like_question("Onde fica a loja")
    assert looks_like_question("आपकी दुकान कब खुलती है")
    assert looks_like_question("is it free?")
    assert not looks_like_question("ok thanks")
    assert not looks_like_question("o pedido chegou")


def test_decide_answers_hands_off_near_misses_and_unknown_questions():
    index = compile_faq(entries())
    assert decide(index, "what are ur oppening hours", 80).kind == "answer"
    near = decide(index, "what are ur oppening hours", 95)
    assert near.kind == "handoff" and near.match is not None and near.match.entry.id == 1
    assert decide(index, "can you help me with my account?", 80).kind == "handoff"
    assert decide(index, "my package is broken", 80).kind == "none"
    assert decide(compile_faq([]), "what are your opening hours?", 80).kind == "none"


def test_disabled_entries_and_one_result_per_entry():
    rows = entries()
    rows[0].enabled = False
    found = best_matches(compile_faq(rows), "when are you open", limit=3)
    assert 1 not in [m.entry.id for m in found]
    assert len({m.entry.id for m in found}) == len(found) == 3


# ------------------------------------------------------------------ end to end


async def faq_inbox(live: Any, *, enabled: bool = True, threshold: int = 80) -> dict[str, Any]:
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        for data in (HOURS, DELIVERY, RETURNS):
            await do_create_faq(session, actor=ADMIN, inbox_id=None, data=data)
        await do_set_inbox_automation(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={"faq_enabled": enabled, "faq_threshold": threshold},
        )
    return inbox


async def faq_row(live: Any, question: str) -> FaqEntry:
    async with live.runtime.db.session() as session:
        row = await session.scalar(select(FaqEntry).where(FaqEntry.question == question))
        assert row is not None
        return row


async def test_a_close_question_is_answered_through_the_outbox_to_the_phone(live):
    await faq_inbox(live)
    await customer_says(live, "what are ur oppening hours?")
    texts = await wait_received(live, 1)
    assert texts == ["Hi Ana, we are open 9:00 to 18:00, Monday to Friday."]
    await settle_jobs(live)
    entry = await faq_row(live, HOURS["question"])
    assert (entry.matches, entry.answered, entry.handed_off) == (1, 1, 0)
    assert entry.last_matched_at is not None
    bot = [m for m in await conversation_messages(live) if m.direction == "out"]
    assert bot[0].content["automation"] == {"kind": "faq", "faq_id": entry.id}
    assert bot[0].sender_user_id is None
    async with live.runtime.db.session() as session:
        day = await session.scalar(select(FaqDay))
        assert (day.faq_id, day.day, day.matches, day.answered) == (
            entry.id,
            utcnow().date(),
            1,
            1,
        )
        job = await session.scalar(select(AutomationJob))
        assert job.outcome["faq"]["decision"] == "answer" and job.outcome["sent"] == 1
    # A Portuguese phrasing of another entry, same conversation.
    await customer_says(live, "Quanto custa a entrega?")
    assert (await wait_received(live, 2))[1] == DELIVERY["answer"]


async def test_a_near_miss_goes_to_a_person_with_a_note_and_no_reply(live, monkeypatch):
    # rapidfuzz's near miss: the semantic matcher, when installed, scores this typo 100.
    monkeypatch.setattr(semantic, "_state", {"embedder": None})
    await faq_inbox(live, threshold=98)
    await customer_says(live, "what are ur oppening hours?")
    await settle_jobs(live)
    assert received(live) == []
    notes = [m for m in await conversation_messages(live) if m.type == "note"]
    assert len(notes) == 1
    assert "FAQ bot was not sure" in notes[0].text and HOURS["question"] in notes[0].text
    entry = await faq_row(live, HOURS["question"])
    assert (entry.matches, entry.answered, entry.handed_off) == (1, 0, 1)
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(Conversation))).status == "open"


async def test_a_vague_question_is_handed_over_without_counting_an_entry(live):
    await faq_inbox(live)
    await customer_says(live, "can you help me with something about my account?")
    await settle_jobs(live)
    assert received(live) == []
    notes = [m for m in await conversation_messages(live) if m.type == "note"]
    assert len(notes) == 1 and "FAQ bot was not sure" in notes[0].text
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(FaqEntry.matches).order_by(-FaqEntry.matches))) == 0


async def test_small_talk_gets_nothing(live):
    await faq_inbox(live)
    await customer_says(live, "ok")
    await settle_jobs(live)
    assert received(live) == []
    assert [m for m in await conversation_messages(live) if m.type == "note"] == []


async def test_faq_disabled_answers_nothing(live):
    await faq_inbox(live, enabled=False)
    await customer_says(live, "What are your opening hours?")
    await settle_jobs(live)
    assert received(live) == []
    messages = await conversation_messages(live)
    assert [m.direction for m in messages] == ["in"]


async def test_a_conversation_assigned_to_a_person_is_left_alone(live):
    inbox = await faq_inbox(live)
    user_id, _ = await create_user(live, email="agent@example.com", inbox_ids=(inbox["id"],))
    await customer_says(live, "ok")
    await settle_jobs(live)
    async with live.runtime.db.session() as session:
        conversation = await session.scalar(select(Conversation))
        await do_update_conversation(
            session, actor=ADMIN, conversation=conversation, assignee_id=user_id
        )
    await customer_says(live, "What are your opening hours?")
    await settle_jobs(live)
    assert received(live) == []
    assert [m for m in await conversation_messages(live) if m.type == "note"] == []


async def test_a_rule_that_matches_comes_first(live):
    inbox = await faq_inbox(live)
    async with live.runtime.db.session() as session:
        await do_create_rule(
            session,
            actor=ADMIN,
            inbox_id=inbox["id"],
            data={
                "name": "Hours rule",
                "conditions": {"keywords": ["opening hours"]},
                "actions": [{"type": "reply", "text": "From the rule."}],
            },
        )
    await customer_says(live, "What are your opening hours?")
    assert await wait_received(live, 1) == ["From the rule."]
    await settle_jobs(live)
    assert (await faq_row(live, HOURS["question"])).matches == 0


async def test_a_failing_faq_keeps_the_message_and_finishes_the_job(live, monkeypatch):
    await faq_inbox(live)

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("index broken")

    monkeypatch.setattr(live.runtime.automation, "faq_index", broken)
    await customer_says(live, "What are your opening hours?")
    await settle_jobs(live)
    messages = await conversation_messages(live)
    assert [(m.direction, m.text) for m in messages] == [("in", "What are your opening hours?")]
    async with live.runtime.db.session() as session:
        assert (await session.scalar(select(AutomationJob.state))) == "done"


# ------------------------------------------------------------------ API


async def test_api_creates_validates_tests_reviews_audits_and_applies_at_once(live):
    inbox = await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    headers = auth(token)
    bad_bodies = [
        ({"question": "x" * 501, "answer": "a"}, "question"),
        ({"question": "q", "answer": "a" * 4097}, "answer"),
        ({"question": "q", "answer": "a", "alternatives": ["p"] * 21}, "alternatives"),
        ({"question": "q", "answer": "a", "alternatives": ["p" * 501]}, "alternatives"),
        ({"question": "q"}, None),
        ({"question": "   ", "answer": "a"}, "question"),
        ({"question": "q", "answer": "a", "language": "english!"}, "language"),
    ]
    for body, field in bad_bodies:
        response = await live.client.post("/api/v1/automation/faq", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["message"]
        if field is not None:
            assert field in error["message"] or error.get("field") == field, error
    created = await live.client.post(
        "/api/v1/automation/faq", json={**HOURS, "inbox_id": inbox["id"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["inbox_id"] == inbox["id"] and entry["hit_rate"] is None
    assert entry["review_due"] is False and entry["alternatives"] == HOURS["alternatives"]
    settings = await live.client.put(
        f"/api/v1/automation/inboxes/{inbox['id']}/settings",
        json={"faq_enabled": True, "faq_threshold": 101},
        headers=headers,
    )
    assert settings.status_code == 422
    settings = await live.client.put(
        f"/api/v1/automation/inboxes/{inbox['id']}/settings",
        json={"faq_enabled": True, "faq_threshold": 75},
        headers=headers,
    )
    assert settings.json()["faq_enabled"] is True and settings.json()["faq_threshold"] == 75
    tried = await live.client.post(
        "/api/v1/automation/faq/test",
        json={"inbox_id": inbox["id"], "text": "when are you opne"},
        headers=headers,
    )
    assert tried.status_code == 200, tried.text
    result = tried.json()
    assert result["decision"] == "answer" and result["threshold"] == 75
    assert result["matches"][0]["faq_id"] == entry["id"] and result["matches"][0]["score"] >= 75
    # The worker's compiled FAQ follows a change at once (event-driven invalidation).
    await customer_says(live, "What are your opening hours?")
    assert (await wait_received(live, 1))[0].startswith("Hi Ana, we are open")
    await settle_jobs(live)
    patched = await live.client.patch(
        f"/api/v1/automation/faq/{entry['id']}",
        json={"answer": "New hours: 8 to 20."},
        headers=headers,
    )
    assert patched.status_code == 200 and patched.json()["answer"] == "New hours: 8 to 20."
    await customer_says(live, "When are you open?")
    assert (await wait_received(live, 2))[1] == "New hours: 8 to 20."
    await settle_jobs(live)
    detail = (
        await live.client.get(f"/api/v1/automation/faq/{entry['id']}", headers=headers)
    ).json()
    assert (detail["matches"], detail["answered"], detail["hit_rate"]) == (2, 2, 1.0)
    assert detail["history"] == [
        {
            "day": utcnow().date().isoformat(),
            "matches": 2,
            "answered": 2,
            "handed_off": 0,
            "hit_rate": 1.0,
        }
    ]
    # Review due after 90 days; marking it reviewed clears it.
    async with live.runtime.db.session() as session:
        row = await session.get(FaqEntry, entry["id"])
        row.last_reviewed_at = utcnow() - timedelta(days=91)
    listed = (
        await live.client.get(f"/api/v1/automation/faq?inbox_id={inbox['id']}", headers=headers)
    ).json()["items"]
    assert [e["review_due"] for e in listed] == [True]
    reviewed = await live.client.post(
        f"/api/v1/automation/faq/{entry['id']}/reviewed", headers=headers
    )
    assert reviewed.status_code == 200 and reviewed.json()["review_due"] is False
    moved = await live.client.patch(
        f"/api/v1/automation/faq/{entry['id']}", json={"inbox_id": None}, headers=headers
    )
    assert moved.json()["inbox_id"] is None
    deleted = await live.client.delete(f"/api/v1/automation/faq/{entry['id']}", headers=headers)
    assert deleted.status_code == 204
    missing = await live.client.get(f"/api/v1/automation/faq/{entry['id']}", headers=headers)
    assert missing.status_code == 404
    async with live.runtime.db.session() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target_type == "faq_entry")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert actions == ["faq.create", "faq.update", "faq.review", "faq.update", "faq.delete"]


async def test_agents_may_read_but_not_change_or_test_the_faq(live):
    inbox = await sim_inbox(live)
    _, agent = await create_user(
        live, email="agent@example.com", role="agent", inbox_ids=(inbox["id"],)
    )
    async with live.runtime.db.session() as session:
        entry = await do_create_faq(session, actor=ADMIN, inbox_id=None, data=HOURS)
    headers = auth(agent)
    assert (await live.client.get("/api/v1/automation/faq", headers=headers)).status_code == 200
    for method, url, body in (
        ("POST", "/api/v1/automation/faq", {"question": "q", "answer": "a"}),
        ("POST", "/api/v1/automation/faq/test", {"inbox_id": inbox["id"], "text": "hours?"}),
        ("PATCH", f"/api/v1/automation/faq/{entry.id}", {"answer": "changed"}),
        ("POST", f"/api/v1/automation/faq/{entry.id}/reviewed", None),
        ("DELETE", f"/api/v1/automation/faq/{entry.id}", None),
    ):
        response = await live.client.request(method, url, json=body, headers=headers)
        assert response.status_code == 403, (method, url, response.text)
    browser = await sign_in(live, "agent@example.com")
    assert (await browser.get("/admin/automation/faq")).status_code == 403
    await browser.aclose()


async def test_arbitrary_create_bodies_never_give_a_500(live):
    await sim_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    url = f"{live.base_url}/api/v1/automation/faq"
    statuses: list[int] = []
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=600)
    )
    values = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=25) | st.dictionaries(st.text(), inner)
    )
    keys = st.sampled_from(
        ["inbox_id", "question", "alternatives", "answer", "language", "enabled", "x"]
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.dictionaries(keys, values, max_size=7) | values)
    def post(body: Any) -> None:
        with httpx.Client(timeout=30) as client:
            response = client.post(url, json=body, headers=auth(token))
        assert response.status_code in (201, 404, 422), response.text
        statuses.append(response.status_code)

    await asyncio.to_thread(post)
    assert 422 in statuses


# ------------------------------------------------------------------ admin pages


async def test_admin_pages_create_try_edit_review_and_turn_the_bot_on(live):
    inbox = await sim_inbox(live)
    await create_user(live, email="boss@example.com")
    browser = await sign_in(live, "boss@example.com")
    page = await browser.get("/admin/automation/faq")
    assert page.status_code == 200 and "No questions yet" in page.text
    csrf = csrf_of(page.text)
    no_csrf = await browser.post(
        "/admin/automation/faq", data={"question": "q", "answer": "a", "inbox_id": ""}
    )
    assert no_csrf.status_code == 403
    bad = await browser.post(
        "/admin/automation/faq",
        data={"csrf_token": csrf, "question": "   ", "answer": "a", "inbox_id": ""},
    )
    assert bad.status_code == 422 and "A question of 1 to 500 characters" in bad.text
    created = await browser.post(
        "/admin/automation/faq",
        data={
            "csrf_token": csrf,
            "question": "Opening <hours>?",
            "alternatives": "When are you open?\n\nQual é o horário?\n",
            "answer": "9 to 18.",
            "inbox_id": str(inbox["id"]),
        },
    )
    assert created.status_code == 303
    page = await browser.get("/admin/automation/faq")
    assert "Opening &lt;hours&gt;?" in page.text and "Qual é o horário?" in page.text
    async with live.runtime.db.session() as session:
        entry = await session.scalar(select(FaqEntry))
        assert entry.alternatives == ["When are you open?", "Qual é o horário?"]
        assert entry.inbox_id == inbox["id"]
        entry.last_reviewed_at = utcnow() - timedelta(days=100)
    page = await browser.get("/admin/automation/faq")
    assert "review due" in page.text
    tried = await browser.post(
        "/admin/automation/faq/try",
        data={"csrf_token": csrf, "inbox_id": str(inbox["id"]), "text": "qual e o horario"},
    )
    assert tried.status_code == 200 and "The bot answers with this entry" in tried.text
    assert "the FAQ bot is off" in tried.text
    one = await browser.get(f"/admin/automation/faq/{entry.id}")
    assert one.status_code == 200 and "review due" in one.text
    reviewed = await browser.post(
        f"/admin/automation/faq/{entry.id}/reviewed", data={"csrf_token": csrf}
    )
    assert reviewed.status_code == 303
    assert "review due" not in (await browser.get(f"/admin/automation/faq/{entry.id}")).text
    saved = await browser.post(
        f"/admin/automation/faq/{entry.id}",
        data={
            "csrf_token": csrf,
            "question": "Opening hours?",
            "alternatives": "When are you open?",
            "answer": "8 to 20.",
            "inbox_id": "",
            "enabled": "1",
        },
    )
    assert saved.status_code == 303
    async with live.runtime.db.session() as session:
        entry = await session.get(FaqEntry, entry.id)
        assert (entry.answer, entry.inbox_id, entry.alternatives) == (
            "8 to 20.",
            None,
            ["When are you open?"],
        )
    refused = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/faq",
        data={"csrf_token": csrf, "faq_enabled": "1", "faq_threshold": "150"},
    )
    assert refused.status_code == 422 and "faq_threshold is 0 to 100" in refused.text
    turned_on = await browser.post(
        f"/admin/automation/inboxes/{inbox['id']}/faq",
        data={"csrf_token": csrf, "faq_enabled": "1", "faq_threshold": "70"},
    )
    assert turned_on.status_code == 303
    async with live.runtime.db.session() as session:
        row = await session.get(InboxAutomation, inbox["id"])
        assert (row.faq_enabled, row.faq_threshold) == (True, 70)
    inbox_page = await browser.get(f"/admin/automation/inboxes/{inbox['id']}")
    assert 'name="faq_threshold" min="0" max="100" value="70"' in inbox_page.text
    index = await browser.get("/admin/automation")
    assert 'href="/admin/automation/faq"' in index.text
    deleted = await browser.post(
        f"/admin/automation/faq/{entry.id}/delete", data={"csrf_token": csrf}
    )
    assert deleted.status_code == 303
    assert "No questions yet" in (await browser.get("/admin/automation/faq")).text
    await browser.aclose()
