"""`wadesk automation rules | faq`, run as a person would (subprocesses on the test database)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from unittest.mock import ANY

from sqlalchemy import select

from tests.helpers import auth, create_inbox, create_user, logged_events, run_wadesk
from wadesk.audit.actions import Actor
from wadesk.audit.models import AuditEvent
from wadesk.automation.actions import FAQ_CHANGED, do_create_faq
from wadesk.automation.models import AutomationRule, FaqEntry
from wadesk.realtime.models import EventRecord

RULES = [
    {
        "name": "Greeting",
        "trigger": "message",
        "conditions": {"keywords": ["oi", "olá"]},
        "actions": [{"type": "reply", "text": "Olá! Já vamos responder."}],
        "after_handoff": False,
        "enabled": True,
    },
    {
        "name": "Refunds [urgent]",
        "conditions": {"keywords": ["refund"]},
        "actions": [{"type": "add_label", "label": "refund"}, {"type": "handoff"}],
        "enabled": False,
    },
]


async def wadesk(live, *args: str, ok: bool = True) -> tuple[int, str, str]:
    return await run_wadesk(live, "automation", *args, ok=ok)


async def _rules(live, inbox_id: int) -> list[AutomationRule]:
    async with live.runtime.db.session() as session:
        return list(
            (
                await session.scalars(
                    select(AutomationRule)
                    .where(AutomationRule.inbox_id == inbox_id)
                    .order_by(AutomationRule.position)
                )
            ).all()
        )


async def _audit(live, action: str) -> list[AuditEvent]:
    async with live.runtime.db.session() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            ).all()
        )


async def test_rules_import_list_export_and_replace(live, tmp_path: Path):
    inbox = await create_inbox(live)
    source = tmp_path / "rules.json"
    source.write_text(json.dumps({"rules": RULES}), encoding="utf-8")
    _, out, _ = await wadesk(live, "rules", "import", "--inbox", str(inbox["id"]), str(source))
    assert "imported 2 rule(s)" in out
    rules = await _rules(live, inbox["id"])
    assert [r.name for r in rules] == ["Greeting", "Refunds [urgent]"]
    assert rules[1].trigger == "message" and rules[1].enabled is False
    # The API sees what the command wrote.
    _, token = await create_user(live, email="boss@example.com")
    listed = await live.client.get(
        f"/api/v1/automation/inboxes/{inbox['id']}/rules", headers=auth(token)
    )
    assert [r["name"] for r in listed.json()["items"]] == ["Greeting", "Refunds [urgent]"]

    _, table, _ = await wadesk(live, "rules", "list", "--inbox", str(inbox["id"]))
    assert "Refunds [urgent]" in table and "add_label, handoff" in table

    exported = tmp_path / "export.json"
    _, out, err = await wadesk(
        live, "rules", "export", "--inbox", str(inbox["id"]), "--out", str(exported)
    )
    assert out == "" and "written to" in err
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert document["inbox_id"] == inbox["id"]
    assert [r["name"] for r in document["rules"]] == ["Greeting", "Refunds [urgent]"]
    assert document["rules"][0]["conditions"] == {"keywords": ["oi", "olá"]}
    _, stdout_export, _ = await wadesk(live, "rules", "export", "--inbox", str(inbox["id"]))
    assert json.loads(stdout_export) == document

    # Again without --replace: appended after; with --replace: instead of.
    await wadesk(live, "rules", "import", "--inbox", str(inbox["id"]), str(exported))
    assert len(await _rules(live, inbox["id"])) == 4
    only = tmp_path / "one.json"
    only.write_text(json.dumps([RULES[1]]), encoding="utf-8")
    await wadesk(live, "rules", "import", "--inbox", str(inbox["id"]), str(only), "--replace")
    assert [r.name for r in await _rules(live, inbox["id"])] == ["Refunds [urgent]"]

    imports = await _audit(live, "automation_rule.import")
    assert [(e.actor_type, e.actor_id, e.details) for e in imports] == [
        ("system", "cli", {"added": 2, "replaced": 0}),
        ("system", "cli", {"added": 2, "replaced": 0}),
        ("system", "cli", {"added": 1, "replaced": 4}),
    ]
    assert len(await _audit(live, "automation_rule.create")) == 5
    assert len(await _audit(live, "automation_rule.delete")) == 4


async def test_an_invalid_rule_names_rule_and_field_and_writes_nothing(live, tmp_path: Path):
    inbox = await create_inbox(live)
    bad = [
        RULES[0],
        {"name": "Broken [x]", "actions": [{"type": "reply", "text": "ok"}, {"type": "reply"}]},
    ]
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(bad), encoding="utf-8")
    code, _, err = await wadesk(
        live, "rules", "import", "--inbox", str(inbox["id"]), str(source), ok=False
    )
    assert code == 1
    assert "rule 2 ('Broken [x]')" in err and "actions[1].text" in err
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps([{"name": "X", "action": []}]), encoding="utf-8")
    code, _, err = await wadesk(
        live, "rules", "import", "--inbox", str(inbox["id"]), str(typo), "--replace", ok=False
    )
    assert code == 1 and "rule 1 ('X')" in err and "'action'" in err
    team = tmp_path / "team.json"
    team.write_text(
        json.dumps([{"name": "T", "actions": [{"type": "assign_team", "team": "Nobody"}]}]),
        encoding="utf-8",
    )
    code, _, err = await wadesk(
        live, "rules", "import", "--inbox", str(inbox["id"]), str(team), ok=False
    )
    assert code == 1 and "no team named 'Nobody'" in err
    assert await _rules(live, inbox["id"]) == []
    assert await _audit(live, "automation_rule.create") == []

    notjson = tmp_path / "x.json"
    notjson.write_text("{", encoding="utf-8")
    code, _, err = await wadesk(
        live, "rules", "import", "--inbox", str(inbox["id"]), str(notjson), ok=False
    )
    assert code == 1 and "is not JSON" in err
    code, _, err = await wadesk(live, "rules", "list", "--inbox", "999999", ok=False)
    assert code == 1 and "no inbox with id 999999" in err
    code, _, err = await wadesk(
        live, "rules", "import", "--inbox", str(inbox["id"]), str(tmp_path / "nope"), ok=False
    )
    assert code == 1 and "cannot read" in err


async def test_faq_import_and_export_as_csv(live, tmp_path: Path):
    inbox = await create_inbox(live)
    source = tmp_path / "faq.csv"
    source.write_text(
        "question,answer,alternatives,language\n"
        'Do you ship abroad?,"Yes, to 30 countries.",international shipping|ship overseas,en\n'
        "Qual o horário?,Das 9h às 18h.\n"
        "\n"
        "Where is my order?,Send us the order number.,,\n",
        encoding="utf-8",
    )
    _, out, _ = await wadesk(live, "faq", "import", "--inbox", str(inbox["id"]), str(source))
    assert "imported 3 FAQ entries" in out
    async with live.runtime.db.session() as session:
        entries = (await session.scalars(select(FaqEntry).order_by(FaqEntry.id))).all()
    assert [(e.inbox_id, e.question, e.alternatives, e.language) for e in entries] == [
        (inbox["id"], "Do you ship abroad?", ["international shipping", "ship overseas"], "en"),
        (inbox["id"], "Qual o horário?", [], None),
        (inbox["id"], "Where is my order?", [], None),
    ]
    assert entries[0].answer == "Yes, to 30 countries."
    imported = await _audit(live, "faq.import")
    assert [(e.actor_id, e.details) for e in imported] == [("cli", {"added": 3})]

    _, out, _ = await wadesk(live, "faq", "export", "--inbox", str(inbox["id"]))
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["question", "answer", "alternatives", "language"]
    assert rows[1] == [
        "Do you ship abroad?",
        "Yes, to 30 countries.",
        "international shipping|ship overseas",
        "en",
    ]
    assert rows[2] == ["Qual o horário?", "Das 9h às 18h.", "", ""]
    # The export imports again (into another inbox) as the same entries.
    other = await create_inbox(live, phone_number_id="106540352242999")
    exported = tmp_path / "out.csv"
    await wadesk(live, "faq", "export", "--inbox", str(inbox["id"]), "--out", str(exported))
    await wadesk(live, "faq", "import", "--inbox", str(other["id"]), str(exported))
    _, again, _ = await wadesk(live, "faq", "export", "--inbox", str(other["id"]))
    assert again == out


async def test_an_invalid_faq_row_names_the_line_and_writes_nothing(live, tmp_path: Path):
    inbox = await create_inbox(live)
    source = tmp_path / "faq.csv"
    source.write_text(
        "Do you ship abroad?,Yes.\nWhat time?,9 to 6,,klingon language\n", encoding="utf-8"
    )
    code, _, err = await wadesk(
        live, "faq", "import", "--inbox", str(inbox["id"]), str(source), ok=False
    )
    assert code == 1 and "line 2, language" in err
    source.write_text("Only a question\n", encoding="utf-8")
    code, _, err = await wadesk(
        live, "faq", "import", "--inbox", str(inbox["id"]), str(source), ok=False
    )
    assert code == 1 and "line 1: expected 2 to 4 columns" in err
    source.write_text("Q?,   \n", encoding="utf-8")
    code, _, err = await wadesk(
        live, "faq", "import", "--inbox", str(inbox["id"]), str(source), ok=False
    )
    assert code == 1 and "line 1, answer" in err
    async with live.runtime.db.session() as session:
        assert (await session.scalars(select(FaqEntry))).all() == []
    assert await _audit(live, "faq.create") == []


async def test_faq_import_replace_changes_only_the_inbox_entries(live, tmp_path: Path):
    inbox = await create_inbox(live)
    other = await create_inbox(live, phone_number_id="106540352242999")
    seeder = Actor.system("seed")
    async with live.runtime.db.session() as session:
        for scope in (inbox["id"], other["id"], None):
            for question, answer in (
                ("Old question?", "Old answer."),
                ("Do you ship abroad?", "No."),
                ("Qual o horário?", "Das 9h às 18h."),
            ):
                data = {"question": question, "answer": answer}
                await do_create_faq(session, actor=seeder, inbox_id=scope, data=data)
    async with live.runtime.db.session() as session:
        before = {
            (e.inbox_id, e.question): e.id for e in (await session.scalars(select(FaqEntry))).all()
        }
    events_before = await _faq_events(live)
    source = tmp_path / "faq.csv"
    source.write_text(
        "question,answer,alternatives,language\n"
        'do you ship ABROAD? ,"Yes, to 30 countries.",ship overseas,en\n'
        "Qual o horário?,Das 9h às 18h.\n"
        "Where is my order?,Send us the order number.\n",
        encoding="utf-8",
    )
    _, out, _ = await wadesk(
        live, "faq", "import", "--inbox", str(inbox["id"]), str(source), "--replace"
    )
    assert "1 created, 1 updated, 1 deleted (1 unchanged)" in out

    async with live.runtime.db.session() as session:
        entries = (await session.scalars(select(FaqEntry).order_by(FaqEntry.id))).all()
    mine = [(e.id, e.question, e.answer, e.alternatives, e.language) for e in entries]
    assert [m for m, e in zip(mine, entries, strict=True) if e.inbox_id == inbox["id"]] == [
        (
            before[(inbox["id"], "Do you ship abroad?")],  # updated in place
            "do you ship ABROAD?",
            "Yes, to 30 countries.",
            ["ship overseas"],
            "en",
        ),
        (before[(inbox["id"], "Qual o horário?")], "Qual o horário?", "Das 9h às 18h.", [], None),
        (ANY, "Where is my order?", "Send us the order number.", [], None),
    ]
    # The other inbox and the shared entries are untouched.
    for scope in (other["id"], None):
        assert [(e.id, e.question, e.answer) for e in entries if e.inbox_id == scope] == [
            (before[(scope, "Old question?")], "Old question?", "Old answer."),
            (before[(scope, "Do you ship abroad?")], "Do you ship abroad?", "No."),
            (before[(scope, "Qual o horário?")], "Qual o horário?", "Das 9h às 18h."),
        ]

    deleted = await _audit(live, "faq.delete")
    assert [(e.actor_id, e.target_id, e.details) for e in deleted] == [
        (
            "cli",
            str(before[(inbox["id"], "Old question?")]),
            {"inbox_id": inbox["id"], "question": "Old question?"},
        )
    ]
    updated = await _audit(live, "faq.update")
    assert [(e.actor_id, e.target_id) for e in updated] == [
        ("cli", str(before[(inbox["id"], "Do you ship abroad?")]))
    ]
    assert updated[0].details["answer"] == {"before": "No.", "after": "Yes, to 30 countries."}
    created = [e for e in await _audit(live, "faq.create") if e.actor_id == "cli"]
    assert [e.details["question"] for e in created] == ["Where is my order?"]
    imported = await _audit(live, "faq.import")
    assert [(e.actor_id, e.details) for e in imported] == [
        ("cli", {"added": 1, "updated": 1, "deleted": 1, "replace": True})
    ]
    # Workers reload the inbox's FAQ (and only that inbox's).
    new_events = (await _faq_events(live))[len(events_before) :]
    assert new_events and all(p == {"inbox_id": inbox["id"]} for p in new_events)

    # Replacing with the same file again changes nothing.
    _, out, _ = await wadesk(
        live, "faq", "import", "--inbox", str(inbox["id"]), str(source), "--replace"
    )
    assert "0 created, 0 updated, 0 deleted (3 unchanged)" in out


async def _faq_events(live) -> list[dict[str, object]]:
    """Payloads of FAQ-changed events, oldest first."""
    await logged_events(live)
    async with live.runtime.db.session() as session:
        payloads = (
            await session.scalars(
                select(EventRecord.payload)
                .where(EventRecord.kind == FAQ_CHANGED)
                .order_by(EventRecord.id)
            )
        ).all()
    return [dict(p) for p in payloads]


async def test_every_command_has_help(live):
    for args in (
        (),
        ("rules",),
        ("rules", "list"),
        ("rules", "export"),
        ("rules", "import"),
        ("faq",),
        ("faq", "import"),
        ("faq", "export"),
    ):
        _, out, _ = await wadesk(live, *args, "--help")
        assert "Usage:" in out and "automation" in out and "--help" in out
