"""Many rows in one INSERT (wadesk/bulk.py): on PostgreSQL one statement whose text does not
depend on the row count; on both backends the same rows, JSON values, skipped conflicts and
returned columns as an executemany would give."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy import Table, func, select, text

from tests.helpers import create_inbox
from wadesk.bulk import NO_TARGET, bulk_insert
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow
from wadesk.realtime.models import StagedEvent

CONTACTS = cast(Table, Contact.__table__)
STAGED = cast(Table, StagedEvent.__table__)


def _contact(key: str, name: str | None, attributes: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "name": name,
        "phone_key": key,
        "phone_e164": f"+{key}",
        "attributes": attributes,
        "created_at": now,
        "updated_at": now,
    }


async def test_rows_json_conflicts_and_returning_as_an_executemany_would(live):
    db = live.runtime.db
    dialect = db.engine.dialect.name
    texts = set()
    async with db.session() as session:
        first = [
            _contact("5511900000001", "Ana", {"tier": "gold", "tags": ["a", "b"], "n": 1}),
            _contact("5511900000002", None, {}),
        ]
        statement, params = bulk_insert(
            dialect, CONTACTS, first, skip_conflicts=("phone_key",), returning=("phone_key", "id")
        )
        texts.add(str(statement))
        made = dict((await session.execute(statement, params)).tuples().all())
        assert sorted(made) == ["5511900000001", "5511900000002"]

        # A conflicting key is skipped (and not returned); the new one is inserted.
        again = [_contact("5511900000002", "Other", {}), _contact("5511900000003", "Caio", [])]
        statement, params = bulk_insert(
            dialect, CONTACTS, again, skip_conflicts=("phone_key",), returning=("phone_key", "id")
        )
        texts.add(str(statement))
        made_again = dict((await session.execute(statement, params)).tuples().all())
        assert list(made_again) == ["5511900000003"]

        rows = (
            await session.execute(
                select(Contact.phone_key, Contact.name, Contact.attributes).order_by(
                    Contact.phone_key
                )
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("5511900000001", "Ana", {"tier": "gold", "tags": ["a", "b"], "n": 1}),
            ("5511900000002", None, {}),  # kept as it was
            ("5511900000003", "Caio", []),
        ]

        # NO_TARGET: any unique key; JSON null (not SQL NULL) for None, as the JSON type does.
        events = [
            {
                "kind": "x",
                "inbox_id": None,
                "conversation_id": i,
                "payload": None if i == 2 else {"i": i},
                "created_at": utcnow(),
            }
            for i in range(1, 4)
        ]
        statement, params = bulk_insert(dialect, STAGED, events, skip_conflicts=NO_TARGET)
        await session.execute(statement, params)
        stored = (
            await session.execute(
                select(StagedEvent.conversation_id, StagedEvent.payload).order_by(
                    StagedEvent.conversation_id
                )
            )
        ).all()
        assert [tuple(r) for r in stored] == [(1, {"i": 1}), (2, None), (3, {"i": 3})]
        sql_nulls = await session.scalar(
            select(func.count()).select_from(STAGED).where(StagedEvent.payload.is_(None))
        )
        assert sql_nulls == 0
    if dialect == "postgresql":
        assert len(texts) == 1  # two and three rows, one text: prepared once
        assert "unnest(" in texts.pop()


def test_rows_must_give_what_python_would_default():
    """INSERT ... SELECT applies no Python-side default: a missing one is a programming error,
    said at once rather than a NOT NULL violation in production."""
    rows = [{"kind": "x", "inbox_id": None, "conversation_id": None, "payload": {}}]
    with pytest.raises(ValueError, match="created_at"):
        bulk_insert("postgresql", STAGED, rows)
    # SQLite's executemany applies the default itself.
    statement, _params = bulk_insert("sqlite", STAGED, rows)
    assert "INSERT INTO events_staged" in str(statement)


async def test_a_partial_unique_index_as_the_conflict_target(live):
    """Conversations: one unresolved per contact and inbox (a partial unique index)."""
    if live.runtime.db.is_sqlite:
        pytest.skip("the SQLite form is SQLAlchemy's own ON CONFLICT, tested by ingest")
    inbox = await create_inbox(live)
    db = live.runtime.db
    now = utcnow()
    async with db.session() as session:
        statement, params = bulk_insert(
            "postgresql", CONTACTS, [_contact("5511900000009", "Bia", {})], returning=("id",)
        )
        contact_id = (await session.execute(statement, params)).scalar_one()
        row = {
            "inbox_id": inbox["id"],
            "contact_id": contact_id,
            "status": "open",
            "priority": "none",
            "unread_count": 1,
            "last_customer_message_at": now,
            "last_message_preview": "hi",
            "last_activity_at": now,
            "created_at": now,
            "updated_at": now,
        }
        returned = []
        for _ in range(2):
            statement, params = bulk_insert(
                "postgresql",
                cast(Table, Conversation.__table__),
                [row],
                skip_conflicts=("inbox_id", "contact_id"),
                conflict_where=text("status != 'resolved'"),
                returning=("contact_id", "id"),
            )
            returned.append((await session.execute(statement, params)).all())
        assert len(returned[0]) == 1 and returned[1] == []
